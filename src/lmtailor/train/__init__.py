"""Training stages: MLM pretraining (`pretrain`), fine-tuning for tasks (`finetune`) and task distillation
(`distill`); their configs (`config`, torch-free), what fine-tuning and distillation share (`task_training`), and the
precision choice all three make (`precision`)."""
