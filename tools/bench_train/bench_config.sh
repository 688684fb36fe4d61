# Sourced by the training benchmarks: the one DANN job they all run, as a
# da_dist config (conf/demo.yaml's model and method, joint BatchNorm, archive
# normalisation, 1 intra-op thread; no validation, TensorBoard or
# checkpoints), reading data/{source,target}_train.h5 of the working directory.
#
#   write_bench_config FILE NAME EPOCHS BATCH WORKERS ENCODER AUGMENT LOG_EVERY
#   (AUGMENT: true or false, for flips and rot90 together)
write_bench_config() {
  local file=$1 name=$2 epochs=$3 batch=$4 workers=$5 encoder=$6 augment=$7 log_every=$8
  cat >"$file" <<EOF
run: {output_dir: runs, name: $name, seed: 42, max_epochs: $epochs, log_every_n_steps: $log_every, val_every_n_epochs: 0, threads: 1}
data:
  source: {train: [data/source_train.h5]}
  target: {train: [data/target_train.h5]}
  batch_size: $batch
  workers: $workers
  prefetch: 2
  augmentation: {hflip: $augment, vflip: $augment, rot90: $augment}
  normalize: {mode: archive}
model: {encoder: $encoder, bn_mode: joint}
optimizer: {name: adamw, lr: 1.0e-3, weight_decay: 1.0e-4}
scheduler: {name: poly}
domain_adaptation:
  feature_layers: [encoder.layer4]
  method: {name: dann, hidden_size: 256, discriminator_lr: 1.0e-3}
  lambda_schedule: {name: dann, gamma: 10.0, value: 1.0}
  step_mode: batch
callbacks:
  checkpoint: {monitor: train/loss/total, mode: min, save_last: false, every_n_epochs: 0}
logging: {tensorboard: false, progress: false}
EOF
}
