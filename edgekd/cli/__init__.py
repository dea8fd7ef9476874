"""The `edgekd` command: parse flags, call a stage, render the result; command modules share only console.

    main      the Typer app, its command groups and the error edge (one red line + hint)
    console   shared console state, error rendering and output-folder checks
    data      `edgekd data`: inspect, split, synth
    teacher   `edgekd teacher`: evaluate, fine-tune, pretrain and cache teachers
    pretrain  `edgekd pretrain`: PCL student pretraining (edgekd.pretrain)
    distill   `edgekd distill`, `eval`, `ablate`
    export    `edgekd export`
    bench     `edgekd bench`, `profiles`
    pipeline  `edgekd pipeline`: distill, export and bench in one go
    stream    `edgekd stream`: a video or camera through the streaming student
"""
