// Package bench holds blipcuda's benchmarks: the model end to end on the
// real base (ViT-B/16) and large (ViT-L/16) configurations with random
// weights, and the scripts that compare them with transformers on the same
// machine in the same run: compare_cpu.sh on the CPU, and on a GPU
// scripts/compare-gpu.sh, which drives transformers_gpu.py (random-weight
// checkpoints of the real configurations, transformers timings and reference
// outputs), the checkpoint benchmarks of gpu_bench_test.go (the public API on
// a checkpoint directory, skipped unless BLIPCUDA_BENCH_CHECKPOINT is set)
// and gpu_report.py. Results and the machines they were measured on are in
// RESULTS.md.
//
// Run: go test -run '^$' -bench . -benchtime 5x ./bench/
package bench
