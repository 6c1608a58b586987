package blipcuda

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// ConfigHash returns the first 16 hex digits of the SHA-256 of the model's
// architecture (its Config as JSON): two models with the same hash have
// embeddings and features of the same shapes. Stores of embeddings (the
// index package) record it with the model's name.
func (i Info) ConfigHash() string {
	b, err := json.Marshal(i.Config)
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
