package blipcuda

import (
	"errors"
	"fmt"

	"github.com/blipcuda/blipcuda/cuda"
	"github.com/blipcuda/blipcuda/ops"
)

// newBackend returns the backend for o.Device and a sentence saying what was
// chosen and why (for logs and Info):
//
//   - "cpu": the CPU backend with o.Threads workers.
//   - "cuda": the CUDA backend; when no device can be opened the error wraps
//     ErrUnavailable and the reason (cuda.ErrUnavailable, an out-of-memory
//     error, ...).
//   - "auto": CUDA when a device opens, else the CPU, the note saying why
//     CUDA was not used.
//
// Precision float16 and bfloat16 make every CUDA tensor that type (weights
// converted once, at load); the CPU computes in float32 only, so those
// precisions fail with ErrUnavailable where no CUDA device opens, rather
// than silently running another precision.
func newBackend(o Options) (ops.Backend, string, error) {
	cpu := func(why string) (ops.Backend, string, error) {
		return ops.NewCPU(ops.WithWorkers(o.Threads)), why, nil
	}
	switch o.Device {
	case "cpu":
		return cpu("cpu: asked for")
	case "cuda", "auto", "":
		dt := ops.F32
		switch o.Precision {
		case "float16":
			dt = ops.F16
		case "bfloat16":
			dt = ops.BF16
		}
		be, err := ops.NewCUDA(ops.WithDType(dt))
		if err == nil {
			return be, describeCUDA(be), nil
		}
		if o.Device == "cuda" {
			return nil, "", fmt.Errorf("%w: device cuda: %w; use --device cpu or auto", ErrUnavailable, err)
		}
		if dt != ops.F32 {
			return nil, "", fmt.Errorf("%w: precision %s needs a CUDA device (%w); use --precision float32 on the CPU", ErrUnavailable, o.Precision, err)
		}
		if !errors.Is(err, cuda.ErrUnavailable) {
			// A device exists but failed to start: say so, still run.
			return cpu(fmt.Sprintf("cpu: CUDA device failed to open (%v)", err))
		}
		return cpu(fmt.Sprintf("cpu: CUDA unavailable (%v)", err))
	}
	return nil, "", fmt.Errorf("blipcuda: unknown device %q (want auto, cpu or cuda)", o.Device)
}

// describeCUDA names the device a CUDA backend runs on.
func describeCUDA(be *ops.CUDA) string {
	in := be.Device().Info()
	return fmt.Sprintf("cuda: %s (%s, compute %d.%d, %d SMs, driver %d, %v, GEMM %s)",
		in.Name, in.Driver, in.CC[0], in.CC[1], in.SMs, in.DriverVersion, be.DType(), be.GEMM())
}
