# The default model's fine-tuning recipe, sourced by tools/make_default_model.sh and
# tools/gpu_models.sh so that both train the same way.
#
# finetune_recipe: `enhscan train` options every fine-tune of the recipe takes (the labels,
# genomes, model, seed and epochs are each script's own).
# aux_recipe ATLAS_BED GROUPS_TSV: the auxiliary-task options of a fine-tune from an atlas
# model (`--base` made by `enhscan pretrain --targets` on that atlas, cell types grouped into
# tissues by GROUPS_TSV), printed one per line: read them with mapfile.
# shellcheck disable=SC2034  # used by the scripts that source this file
finetune_recipe=(--add-background 1 --holdout-chroms chrX --rc-augment --shift-augment 20
                 --batch-size 64 --lr 3e-4)

aux_recipe() {
    printf '%s\n' --aux-targets "$1" --aux-label-column 6 --aux-task-groups "$2" \
        --aux-windows 30000 --aux-weight 1
}
