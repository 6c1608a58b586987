package main

import "github.com/blipcuda/blipcuda/cuda"

// expectedDevice is the device --device auto picks here.
func expectedDevice() string {
	if cuda.Available() == nil {
		return "cuda"
	}
	return "cpu"
}
