// Package bench holds blipcuda's benchmarks: the model end to end on the
// real base (ViT-B/16) and large (ViT-L/16) configurations with random
// weights, and the scripts that compare them with transformers on the same
// machine in the same run (compare_cpu.sh). Results and the machines they
// were measured on are in RESULTS.md.
//
// Run: go test -run '^$' -bench . -benchtime 5x ./bench/
package bench
