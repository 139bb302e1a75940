"""Validators generated from the sample district's ruleset."""
from __future__ import annotations

from pathlib import Path

import pytest

from wangge import dsl
from wangge.core.errors import ValidationFailed
from wangge.core.validators import validators

FIXTURES = Path(__file__).parent.parent / "dsl" / "fixtures"


@pytest.fixture(scope="module")
def checks():
    return validators(dsl.load(FIXTURES / "district.wg"))


def problems(validator, data):
    with pytest.raises(ValidationFailed) as info:
        validator.validate(data)
    return info.value.problems


def test_valid_household_is_normalised(checks):
    record = checks["household"].validate(
        {"门牌": "3-2-101", "人口": "4", "住房": "自有", "车辆": ["汽车"], "电话": "13812345678"})
    assert record["人口"] == 4 and record["车辆"] == ["汽车"]


def test_every_bad_field_is_named_with_expected_and_got_in_chinese(checks):
    found = problems(checks["household"], {"门牌": "abc", "人口": 40, "住房": "别墅", "电话": "123", "狗": 1})
    assert sorted(found) == sorted([
        "门牌号(门牌):应为匹配 ^\\d+-\\d+-\\d+$,实际为 'abc'",
        "常住人口(人口):应为不大于 30,实际为 40",
        "住房性质(住房):应为以下之一:自有, 租赁, 单位宿舍,实际为 '别墅'",
        "联系电话(电话):应为11位手机号或带区号的电话,实际为 '123'",
        "狗: 未定义的字段",
    ])


def test_missing_required_field(checks):
    assert problems(checks["household"], {"门牌": "1-1-1", "住房": "租赁"}) == [
        "常住人口(人口):应为必填,实际为 None"]


def test_english_messages_when_asked():
    checks = validators(dsl.load(FIXTURES / "district.wg"), lang="en")
    assert problems(checks["visit"], {"household": "h1", "分钟": 0}) == [
        "Minutes (分钟): expected at least 1, got 0"]


def test_case_report_needs_a_catalogue_item_photo_and_allowed_channel(checks):
    assert checks["case"].validate({"item": "0102", "channel": "巡查", "photos": ["p1.jpg"]})["photos"] == ["p1.jpg"]
    found = problems(checks["case"], {"item": "0102", "channel": "热线"})
    assert found == ["渠道(channel):应为该事项允许的渠道:巡查, 论坛,实际为 '热线'",
                     "照片(photos):应为至少一张照片,实际为 None"]
    assert problems(checks["case"], {"item": "9999"})[0].startswith("事项(item):应为以下之一:")
