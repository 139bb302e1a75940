"""Rule files shipped with wangge: the national baseline and one per seed model."""
