#!/usr/bin/env bash
# `make demo`: the whole ichkit pipeline on synthetic data, on the embedded
# defaults (SQLite, local processes). Every step is a plain `ichkit` command, so
# this file doubles as a worked example. Output goes to $ICHKIT_DEMO_DIR
# (default demo-output/), which is started afresh.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
ichkit="${ICHKIT:-$here/.venv/bin/ichkit}"
out="${ICHKIT_DEMO_DIR:-demo-output}"
exams="${ICHKIT_DEMO_EXAMS:-600}"
size="${ICHKIT_DEMO_SIZE:-128}"
seed="${ICHKIT_DEMO_SEED:-2019}"
# Subtypes drawn evenly: RSNA's own mix (--subtype-mix rsna) has 2 % epidurals,
# too few in a few hundred exams to learn from or to measure an AUC on.
mix="${ICHKIT_DEMO_SUBTYPE_MIX:-even}"
prevalence="${ICHKIT_DEMO_PREVALENCE:-0.4}"
# ICHKIT_DEMO_ENCODER: the slice encoder: unset, the demo preset's `small-dilated`
# (`small` with a final map of twice the side); `small` (a few per cent faster to
# train on an AMD EPYC with AVX-512, more on slower CPUs; less accurate on
# subarachnoid and intraparenchymal bleeds) or `small-fine` (finer maps throughout,
# 1.5-2.7 x the encoder's training time, by CPU); benchmarks/RESULTS.md compares them.
# ICHKIT_DEMO_INPUT: the model's input side in pixels: unset, the demo preset's 128;
# e.g. 160 is more accurate but takes 1.8 x the training time: 17 minutes in all on an
# AMD EPYC with AVX-512 (benchmarks/RESULTS.md, make demo run 27).
# ICHKIT_DEMO_CROP: how the head's bounding box becomes the square input: unset, the
# demo preset's `fit` (each axis stretched to the input: a head, about three quarters
# as wide as it is long, gets ~1.3 x the pixels from left to right); `square` keeps the
# aspect ratio, as every demo before the fourteenth session did (benchmarks/RESULTS.md).
# Unset settings are left to the demo preset (`ichkit train --preset demo`), so that
# the preset stays the one place that holds their defaults.
model_set=()
if [ -n "${ICHKIT_DEMO_ENCODER:-}" ]; then
  model_set+=(--set "encoder=$ICHKIT_DEMO_ENCODER")
fi
if [ -n "${ICHKIT_DEMO_INPUT:-}" ]; then
  model_set+=(--set "input_size=$ICHKIT_DEMO_INPUT")
fi
if [ -n "${ICHKIT_DEMO_CROP:-}" ]; then
  model_set+=(--set "crop=$ICHKIT_DEMO_CROP")
fi

start=$(date +%s)
# Each step's header shows the time since the start (mm:ss).
step() {
  local t=$(($(date +%s) - start))
  printf '\n\033[1m== [%02d:%02d] %s\033[0m\n' $((t / 60)) $((t % 60)) "$*" >&2
}
# PyTorch trains the demo model in bf16 on CPUs with AVX-512 BF16 and in fp32 on
# AVX2-only ones, where the whole demo takes about twice as long.
if [ -r /proc/cpuinfo ] && grep -qw avx2 /proc/cpuinfo && ! grep -qw avx512f /proc/cpuinfo; then
  printf 'Note: this CPU has AVX2 but no AVX-512: expect 17-26 minutes on 2 cores\n' >&2
  printf 'instead of 7-14 (benchmarks/RESULTS.md, make demo: runs 30, 34, 37 and 38 took\n' >&2
  printf '26, 21, 18 and 17 with small-dilated, the default; runs 14-18 took 18-29 with the small\n' >&2
  printf 'encoder, which ICHKIT_DEMO_ENCODER=small selects).\n' >&2
fi

rm -rf "$out"
mkdir -p "$out"
db="sqlite:///$out/catalog.db"

step "1. Synthetic exams from 3 sites ($exams exams, ${size}px): $out/synth"
"$ichkit" synth "$out/synth" --exams "$exams" --seed "$seed" --size "$size" --sites 3 \
  --prevalence "$prevalence" --subtype-mix "$mix" --masks --preview --workers 2

step "2. De-identification at each site (its own key; keys and mapping stores stay at the site)"
mkdir -p "$out/site-keys"
for site_dir in "$out"/synth/dicom/*/; do
  site="$(basename "$site_dir")"
  key="$out/site-keys/$site.key"
  "$ichkit" deid keygen "$key" --site "$(echo "$site" | tr -cd '[:alnum:]')"
  # Exit status 3 means some files were quarantined (scouts, dose reports): expected here.
  "$ichkit" deid "$site_dir" "$out/deid/$site" --key "$key" --quarantine "$out/quarantine/$site" \
    --workers 2 || [ $? -eq 3 ]
  # The site's labels travel with its pseudonymous UIDs (stand-in for reader labels):
  # only those of the images this site wrote.
  "$ichkit" deid map-labels "$out/synth/truth.csv" "$out/deid/$site-truth.csv" --key "$key" \
    --only-deidentified
done

step "3. Central catalog: ingest every site's de-identified exams"
for site_dir in "$out"/deid/*/; do
  site="$(basename "$site_dir")"
  "$ichkit" ingest "$site_dir" --site "$site" --db "$db" --labels "$out/deid/$site-truth.csv" \
    --label-source truth --report "$out/ingest-$site.csv"
done

step "4. Curation: QC and series choice"
"$ichkit" qc --db "$db" --out "$out/qc.csv"

step "5. Balanced, patient-disjoint split and label figures"
"$ichkit" split --db "$db" --test 0.25 --val 0.10 --seed "$seed" --out "$out/split"
"$ichkit" stats --db "$db" --split default --out "$out/figures"

step "6. Export in the RSNA layout"
"$ichkit" export --db "$db" --split default --out "$out/rsna"

step "7. Train the series model (2.5D CNN + BiGRU) on the curated train split (val picks the epoch)"
# exams.csv (written by the export) carries the curated split; the exported test
# set (stage_2_test + its truth) is the model's test split, never trained on.
"$ichkit" train --preset demo --data "$out/rsna" --out "$out/model" --set split_file=exams.csv \
  "${model_set[@]}" --no-progress

step "8. Evaluate on the curated test set (exams never seen in training)"
"$ichkit" evaluate "$out/model" --split test | tee "$out/evaluation.txt"

step "9. The challenge: the ONNX model predicts the same test set as a submission; ichkit score scores it"
"$ichkit" predict "$out/rsna/stage_2_test" --model "$out/model/model.onnx" \
  --out "$out/challenge/submission.csv"
"$ichkit" score "$out/challenge/submission.csv" "$out/rsna/stage_2_test_truth.csv" \
  | tee "$out/challenge/score.txt"

step "10. Read fresh studies (never catalogued) with the ONNX model, score them, and check where the model looks"
"$ichkit" synth "$out/fresh" --exams 4 --seed $((seed + 1)) --size "$size" --prevalence 1.0 \
  --subtype-mix "$mix" --masks --no-progress
# Grad-CAM style (LayerCAM) overlays of the positive slices; --masks scores each heatmap's peak
# against the known lesion (the ONNX model's best.ckpt beside it gives the gradients).
"$ichkit" predict "$out"/fresh/dicom/*/*/* --model "$out/model/model.onnx" \
  --out "$out/fresh/preds.csv" --heatmaps "$out/fresh/heatmaps" --masks "$out/fresh/masks"
"$ichkit" score "$out/fresh/preds.csv" "$out/fresh/truth.csv"

elapsed=$(( $(date +%s) - start ))
step "Done in ${elapsed}s"
cat >&2 <<EOF
Outputs:
Synthetic exams:   $out/synth (preview: $out/synth/preview.png)
De-identified:     $out/deid (reports: $out/deid/*/deid-report.csv)
Catalog:           $out/catalog.db (QC: $out/qc.csv)
Split:             $out/split
Figures:           $out/figures
RSNA layout:       $out/rsna
Model:             $out/model (best.ckpt, model.onnx, metrics.csv)
Evaluation:        $(grep -Eo '[^ ]*index\.html' "$out/evaluation.txt" | tail -1)
Challenge score:   $out/challenge/score.txt
Fresh studies:     $out/fresh/preds.csv, exams.json (heatmaps: $out/fresh/heatmaps)
Not for clinical use: the model was trained on synthetic data only.
EOF

step "Evaluation summary (the curated test set: exams never seen in training)"
cat "$out/evaluation.txt"
