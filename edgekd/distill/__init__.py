"""The distillation stage: a student trained from teachers on a semi-supervised split, and its evaluation.

    config              DistillConfig: every knob of a run, typed, with defaults and strict overrides
    recipes             which loss terms a run optimizes, on which clips, from which teachers
    losses              every loss term the recipes compose, each a paper's equation
    data                the run's data: dataset, labeled/unlabeled split, DataSpec, per-epoch batch streams
    dist                distributed data parallel from the environment torchrun writes
    schedule            learning-rate schedule: warm-up, then cosine, plateau halving or constant
    teacher_bank        the run's frozen teachers by role, and their outputs for one step
    timebalance_scores  TimeBalance's per-video temporal-similarity score s, computed before training
    student_init        start a student's backbone from a self-supervised teacher folder
    train               distill(cfg) -> run folder: the training loop
    evaluate            test-split accuracy: per epoch, and the multi-view protocol of `edgekd eval`
    probe               linear probe of a frozen backbone's features
    teacher_targets     how good each recipe's distillation target is (the teacher side of the ablation)
    compare             a run beside its supervised baseline on the same labels and budget
    ablation            the papers' claims checked on our data: every recipe at several label fractions
"""
