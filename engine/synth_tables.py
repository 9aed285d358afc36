"""The tables behind the synthetic data set (:mod:`routerbench.engine.synth`).

RouterBench's 11 models with their prices and 0-shot means, its eval names with their row counts,
and per task column the models' relative skills, prompt and answer lengths and the instruction
that opens a prompt; the filler words of the synthetic prompts.
"""

from __future__ import annotations

from routerbench.engine.data import PAPER_FAMILIES

# The 11 models in RouterBench's response order (which also breaks ties).
MODELS: tuple[str, ...] = (
    "gpt-3.5-turbo-1106",
    "claude-instant-v1",
    "claude-v1",
    "claude-v2",
    "gpt-4-1106-preview",
    "meta/llama-2-70b-chat",
    "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
    "WizardLM/WizardLM-13B-V1.2",
    "meta/code-llama-instruct-34b-chat",
    "mistralai/mistral-7b-chat",
)

# USD per 1M tokens (input, output): the prices behind the stored costs.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-3.5-turbo-1106": (1.0, 2.0),
    "claude-instant-v1": (0.8, 2.4),
    "claude-v1": (8.0, 24.0),
    "claude-v2": (8.0, 24.0),
    "gpt-4-1106-preview": (10.0, 30.0),
    "meta/llama-2-70b-chat": (0.9, 0.9),
    "mistralai/mixtral-8x7b-chat": (0.6, 0.6),
    "zero-one-ai/Yi-34B-Chat": (0.8, 0.8),
    "WizardLM/WizardLM-13B-V1.2": (0.3, 0.3),
    "meta/code-llama-instruct-34b-chat": (0.776, 0.776),
    "mistralai/mistral-7b-chat": (0.2, 0.2),
}

# RouterBench 0-shot table: (mean quality, mean cost per query in USD) per model.
TARGETS: dict[str, tuple[float, float]] = {
    "gpt-3.5-turbo-1106": (0.6193, 0.000243),
    "claude-instant-v1": (0.5984, 0.000233),
    "claude-v1": (0.6301, 0.002145),
    "claude-v2": (0.6358, 0.002419),
    "gpt-4-1106-preview": (0.7814, 0.003293),
    "meta/llama-2-70b-chat": (0.3287, 0.000203),
    "mistralai/mixtral-8x7b-chat": (0.5471, 0.000135),
    "zero-one-ai/Yi-34B-Chat": (0.6475, 0.000186),
    "WizardLM/WizardLM-13B-V1.2": (0.4311, 0.000073),
    "meta/code-llama-instruct-34b-chat": (0.2022, 0.000172),
    "mistralai/mistral-7b-chat": (0.3061, 0.000046),
}

# MMLU test-split sizes per subject (57 subjects, 14,042 questions).
_MMLU = {
    "abstract_algebra": 100, "anatomy": 135, "astronomy": 152, "business_ethics": 100,
    "clinical_knowledge": 265, "college_biology": 144, "college_chemistry": 100,
    "college_computer_science": 100, "college_mathematics": 100, "college_medicine": 173,
    "college_physics": 102, "computer_security": 100, "conceptual_physics": 235,
    "econometrics": 114, "electrical_engineering": 145, "elementary_mathematics": 378,
    "formal_logic": 126, "global_facts": 100, "high_school_biology": 310,
    "high_school_chemistry": 203, "high_school_computer_science": 100,
    "high_school_european_history": 165, "high_school_geography": 198,
    "high_school_government_and_politics": 193, "high_school_macroeconomics": 390,
    "high_school_mathematics": 270, "high_school_microeconomics": 238, "high_school_physics": 151,
    "high_school_psychology": 545, "high_school_statistics": 216, "high_school_us_history": 204,
    "high_school_world_history": 237, "human_aging": 223, "human_sexuality": 131,
    "international_law": 121, "jurisprudence": 108, "logical_fallacies": 163,
    "machine_learning": 112, "management": 103, "marketing": 234, "medical_genetics": 100,
    "miscellaneous": 783, "moral_disputes": 346, "moral_scenarios": 895, "nutrition": 306,
    "philosophy": 311, "prehistory": 324, "professional_accounting": 282,
    "professional_law": 1534, "professional_medicine": 272, "professional_psychology": 612,
    "public_relations": 110, "security_studies": 245, "sociology": 201, "us_foreign_policy": 100,
    "virology": 166, "world_religions": 171,
}  # fmt: skip

# Rows per eval name in the 0-shot file (86 names, 36,497 rows), in row order (by name).
EVAL_COUNTS: dict[str, int] = dict(
    sorted(
        {
            "hellaswag": 10042,
            "grade-school-math": 7450,
            **{"mmlu-" + s.replace("_", "-"): c for s, c in _MMLU.items()},
            "arc-challenge": 1470,
            "winogrande": 1267,
            "mbpp": 427,
            "mtbench": 41,
            "mtbench-math": 20,
            "mtbench-reference": 19,
            "consensus_summary": 362,
            "chinese_zodiac": 394,
            "bias_detection": 285,
            "abstract2title": 254,
            "test-match": 3,
            "chinese_guess_idioms": 38,
            "chinese_tang_poetries": 30,
            "chinese_idioms": 38,
            "chinese_famous_novel": 30,
            "chinese_lantern_riddles": 30,
            "chinese_remainder_theorem": 29,
            "chinese_modern_poem_identification": 27,
            "chinese_homonym": 26,
            "chinese_character_riddles": 25,
            "chinese_hard_translations": 25,
            "chinese_poem": 25,
            "chinese_ancient_poetry": 20,
            "chinese_chu_ci": 20,
            "chinese_homophonic": 20,
            "chinese_song_ci": 20,
            "chinese_shi_jing": 18,
        }.items()
    )
)

# Task columns of the skill table: the paper families, then everything else.
TASKS = (*PAPER_FAMILIES, "other")
# Relative skill (logits) of each model per task column, in TASKS order; offsets calibrate means.
SKILL = {
    "gpt-3.5-turbo-1106": (0.3, 0.5, 0.2, 0.8, 0.4, -0.3, 0.2, 0.3),
    "claude-instant-v1": (0.2, 0.3, 0.3, 0.7, 0.0, -0.2, 0.0, 0.3),
    "claude-v1": (0.4, 0.4, 0.2, 0.8, -0.2, -0.1, 0.2, 0.2),
    "claude-v2": (0.3, 0.4, 0.2, 0.9, -0.2, 0.0, 0.1, 0.2),
    "gpt-4-1106-preview": (0.2, 0.6, 0.4, 1.2, 0.3, 0.3, 0.4, 0.3),
    "meta/llama-2-70b-chat": (-1.0, 0.3, 0.4, 0.7, -0.8, 0.0, 0.0, 0.2),
    "mistralai/mixtral-8x7b-chat": (-0.2, 0.3, 0.3, 0.8, -0.2, -0.1, 0.0, 0.1),
    "zero-one-ai/Yi-34B-Chat": (-0.1, 0.6, 0.5, 1.0, -0.6, 0.2, -0.2, 0.2),
    "WizardLM/WizardLM-13B-V1.2": (-0.4, 0.4, 0.0, 0.4, -0.5, 0.0, 0.1, 0.2),
    "meta/code-llama-instruct-34b-chat": (-0.8, -0.4, -0.3, -0.2, 0.8, -0.6, -0.2, -0.3),
    "mistralai/mistral-7b-chat": (-0.6, 0.2, -0.2, 0.3, -0.4, -0.2, 0.0, 0.0),
}
# Per task column: median prompt tokens, typical answer tokens, instruction opening the prompt.
PROMPT_TOKENS = (140, 150, 160, 110, 220, 50, 110, 250)
ANSWER_TOKENS = (120, 20, 25, 20, 120, 15, 300, 80)
INSTRUCTIONS = (
    "Solve the following grade school math problem step by step.",
    "Pick the most plausible continuation of the scene.",
    "The following is a multiple choice question. Answer with the letter of the correct option.",
    "Answer the following science question with the letter of the correct option.",
    "Write a Python function for the task below; it must pass the tests.",
    "Fill in the blank with the option that fits the sentence.",
    "Respond to the user as a helpful assistant.",
    "Complete the following task.",
)
SPLITS = {"grade-school-math": "dev", "mbpp": "test", "mtbench": "test", "winogrande": "dev"}

FILLER = (
    "the of and to in is that for it as with was on be by this are from at or an which not have "
    "one all but were they there been has when who will more if no out so what up its about into "
    "than them can only other new some could time these two may then do first any my now such "
    "like our over man me even most made after also did many before must through back years where "
    "much your way well down should because each just those people how too little state good very "
    "make world still own see men work long get here between both life being under never day same"
).split()
