"""Known-answer tests of the Chinese miner: a term in varied contexts is found whole, its fragments are not."""

from __future__ import annotations

from lmtailor.terms.mine_zh import ChineseParams, mine_chinese

# Ten left and ten right contexts with distinct edge characters, so 不可抗力 has many neighbours on both sides.
LEFT = ["因", "由于", "遭遇", "发生", "出现", "构成", "属于", "证明", "主张", "援引"]
RIGHT = ["导致", "致使", "造成", "影响", "期间", "事由", "免责", "持续", "终止", "条款"]
SUBJECTS = ["承运人", "买受人", "出租人", "承包人", "保管人", "托运人"]
# PMI grows with log(corpus size): in 1,000 characters every part of a term is frequent, so the default threshold
# (set on millions of characters) is lowered here.
TINY = ChineseParams(min_count=3, min_pmi=1.0)


def force_majeure_texts() -> list[str]:
    texts = []
    for i in range(30):
        left, right, subject = LEFT[i % 10], RIGHT[(i * 3) % 10], SUBJECTS[i % 6]
        texts.append(f"{subject}{left}不可抗力{right}合同不能履行的，应当及时通知对方。")
    courts = [
        "向人民法院起诉",
        "请求人民法院",
        "经人民法院判决",
        "由人民法院裁定",
        "交给人民法院审理",
        "提交到人民法院处理",
    ]
    for i, subject in enumerate(SUBJECTS * 3):
        court = courts[i % len(courts)]
        texts.append(f"{subject}与对方发生争议的，可以{court}。")
    return texts


def test_a_term_in_varied_contexts_is_mined_and_its_fragments_rank_below_it() -> None:
    result = mine_chinese(force_majeure_texts(), TINY)
    rank = {t.term: i for i, t in enumerate(result.terms)}
    assert "不可抗力" in rank
    for fragment in ("不可抗", "可抗力", "可抗", "抗力"):
        assert rank.get(fragment, len(rank)) > rank["不可抗力"], fragment
    term = result.terms[rank["不可抗力"]]
    assert term.freq == 30 and term.lang == "zh"


def test_a_fragment_always_followed_by_the_same_character_is_dropped() -> None:
    # 人民法 is always followed by 院: right branching entropy 0.
    result = mine_chinese(force_majeure_texts(), TINY)
    terms = {t.term for t in result.terms}
    assert "人民法院" in terms
    assert "人民法" not in terms and "民法院" not in terms


def test_function_word_edges_and_numbers_are_not_terms() -> None:
    texts = [f"依照本法第{n}条的规定，{s}的规定应当公布。" for n in ("二十七", "三十一", "四十五") for s in "甲乙丙丁"]
    result = mine_chinese(texts * 2, TINY)
    terms = {t.term for t in result.terms}
    assert "的规定" not in terms
    assert not any(ch in term for term in terms for ch in "二十七三十一四十五")


def test_word_boundaries_can_be_switched_off_and_output_is_deterministic() -> None:
    params = ChineseParams(min_count=3, min_pmi=1.0, word_boundaries=False)
    first = mine_chinese(force_majeure_texts(), params).terms
    assert first == mine_chinese(force_majeure_texts(), params).terms
    assert "不可抗力" in {t.term for t in first}


def test_non_han_text_gives_no_terms() -> None:
    assert mine_chinese(["force majeure 123", "!!!"]).terms == []
