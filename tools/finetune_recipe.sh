# The default model's fine-tuning recipe: the `enhscan train` options every fine-tune of
# tools/make_default_model.sh and tools/gpu_models.sh shares (the labels, genomes, model, seed
# and epochs are each script's own). Sourced by both, so that they train the same way.
# shellcheck disable=SC2034  # used by the scripts that source this file
finetune_recipe=(--add-background 1 --holdout-chroms chrX --rc-augment --shift-augment 20
                 --batch-size 64 --lr 3e-4)
