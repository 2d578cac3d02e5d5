"""Writes the bundled sample corpus: small, SIGHAN-format, generated from a grammar and a
word list written for this project (no sentence comes from a real corpus).

    python data/cws/make_samples.py   # rewrites sample_train.txt and sample_test.txt
"""

from __future__ import annotations

import random
from pathlib import Path

TIMES = [
    "今天",
    "明天",
    "昨天",
    "上午",
    "下午",
    "晚上",
    "0年",
    "0月",
    "0日",
    "去年",
    "最近",
    "周末",
]
PEOPLE = [
    "我们",
    "他们",
    "老师",
    "学生",
    "记者",
    "医生",
    "工程师",
    "农民",
    "孩子",
    "朋友",
    "政府",
    "公司",
    "专家",
    "观众",
    "我",
    "他",
    "她",
    "大家",
    "经理",
    "司机",
]
PLACES = [
    "北京",
    "上海",
    "广州",
    "学校",
    "医院",
    "图书馆",
    "公园",
    "工厂",
    "农村",
    "城市",
    "车站",
    "机场",
    "商店",
    "银行",
    "博物馆",
    "体育馆",
    "办公室",
    "实验室",
]
ADVERBS = [
    "已经",
    "正在",
    "非常",
    "经常",
    "马上",
    "一起",
    "认真",
    "努力",
    "终于",
    "也",
    "都",
    "还",
    "不",
]
VERBS = [
    "参观",
    "讨论",
    "学习",
    "研究",
    "建设",
    "访问",
    "发展",
    "介绍",
    "准备",
    "完成",
    "购买",
    "提出",
    "支持",
    "解决",
    "组织",
    "举行",
    "看",
    "写",
    "买",
    "说",
]
OBJECTS = [
    "问题",
    "计划",
    "经济",
    "文化",
    "技术",
    "项目",
    "报告",
    "会议",
    "电脑",
    "汽车",
    "手机",
    "书",
    "音乐会",
    "比赛",
    "方案",
    "网站",
    "X",
    "0元",
    "新闻",
    "数据",
]
ADJECTIVES = ["重要", "新", "大", "好", "先进", "美丽", "复杂", "简单", "有趣", "传统"]
MEASURES = ["一个", "两个", "这个", "那些", "0个", "许多", "一些"]


def sentence(rng: random.Random) -> list[str]:
    words: list[str] = []
    if rng.random() < 0.5:
        words += [rng.choice(TIMES), "，"]
    words.append(rng.choice(PEOPLE))
    if rng.random() < 0.4:
        words += ["在", rng.choice(PLACES)]
    if rng.random() < 0.7:
        words.append(rng.choice(ADVERBS))
    words.append(rng.choice(VERBS))
    if rng.random() < 0.5:
        words.append(rng.choice(MEASURES))
    if rng.random() < 0.5:
        words += [rng.choice(ADJECTIVES), "的"]
    words.append(rng.choice(OBJECTS))
    if rng.random() < 0.3:
        words += [
            "，",
            rng.choice(PEOPLE),
            rng.choice(ADVERBS),
            rng.choice(VERBS),
            rng.choice(OBJECTS),
        ]
    words.append(rng.choice(["。", "。", "！", "？"]))
    return words


def main() -> None:
    rng = random.Random(20261123)
    here = Path(__file__).resolve().parent
    for name, count in (("sample_train.txt", 600), ("sample_test.txt", 120)):
        lines = ["  ".join(sentence(rng)) for _ in range(count)]
        (here / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
