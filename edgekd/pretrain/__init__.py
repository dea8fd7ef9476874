"""Every loop that trains a teacher or pretrains a student; above teachers/, below distill/.

    step             the one optimizer step (finite check, zero_grad, backward, step, running loss)
    clips            clip sources: the split's videos decoded once into memory, or streamed
    augment          clip augmentations of self-supervised pretraining (the paper's, the authors')
    ssl_objectives   TimeBalance's L_I (Eq. 1) and L_D (Eq. 3 + supp. D.2) on one batch
    ssl              pretrain_ssl: one TimeBalance teacher on the unlabeled videos
    vl               pretrain_vl: the embedded video tower aligned to MiniLM (CLIP's loss)
    finetune         finetune_teacher: a classifier head (or the whole teacher) on the labeled split
    heads            provide_head: a head over the data's classes for an outside teacher
    pcl              pretrain_pcl: PCL (+ KD from a PCL teacher), Camarena et al.
    embedded_config  the built-in teachers' recipe and folders
    embedded         default_teachers: build (pretrain + fine-tune) the built-in teachers on first use

The networks these loops train, and how to load them, live in edgekd.teachers.
"""
