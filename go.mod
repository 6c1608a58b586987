module github.com/blipcuda/blipcuda

go 1.26.8

require (
	github.com/nlpodyssey/gopickle v0.2.0
	github.com/nlpodyssey/safetensors v0.0.0-20250209183917-bfb01cc25f7c
	golang.org/x/image v0.48.0
	golang.org/x/sys v0.50.0
	golang.org/x/text v0.44.0
)

require go.etcd.io/bbolt v1.5.0 // indirect
