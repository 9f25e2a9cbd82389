"""Training stages: fine-tuning for tasks (`finetune`), and the precision choice they share (`precision`)."""
