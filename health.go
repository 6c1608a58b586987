package blipcuda

import (
	"fmt"

	"github.com/blipcuda/blipcuda/ops"
)

// Health returns nil while the model can run, ErrClosed after Close, or
// the sticky device error (wrapping it) that left the CUDA context
// unusable. It does not wait for calls in progress.
func (m *Model) Health() error {
	if m.closedFlag.Load() {
		return ErrClosed
	}
	if c, ok := m.be.(*ops.CUDA); ok {
		if err := c.Device().Err(); err != nil {
			return fmt.Errorf("%w: device: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// DeviceMemory reports the device memory the model holds: reserved from
// the driver by its weight and activation arenas, and of that allocated now.
// ok is false on the CPU backend.
func (m *Model) DeviceMemory() (reserved, inUse uint64, ok bool) {
	c, isCUDA := m.be.(*ops.CUDA)
	if !isCUDA || m.closedFlag.Load() {
		return 0, 0, false
	}
	w, a := c.ArenaStats()
	return w.Reserved + a.Reserved, w.InUse + a.InUse, true
}
