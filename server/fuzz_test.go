package server

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzDecodeRequest: any body, JSON or multipart, into every request type
// gives a request or a 4xx naming what is wrong; never a panic or a 5xx.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"images": ["aGVsbG8="], "texts": ["a dog"], "score": "itm"}`,
		`{"input": ["a", {"image": "data:image/png;base64,AAAA"}, {"text": "b"}], "encoding_format": "base64"}`,
		`{"query": "q", "images": ["x"], "top_n": 2}`,
		`{"texts": [1, 2]}`, `{"texts": "a"}`, `[]`, `{"a":`, "{\"texts\": [\"\xff\"]}", `{} {}`, ``,
		"--B\r\nContent-Disposition: form-data; name=\"texts\"\r\n\r\na cat\r\n--B\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a.png\"\r\n\r\nPNG\r\n--B--\r\n",
		"--B\r\nContent-Disposition: form-data; name=\"top_n\"\r\n\r\nx\r\n--B--\r\n",
	} {
		f.Add([]byte(seed), seed != "" && seed[0] == '-')
	}
	f.Fuzz(func(t *testing.T, body []byte, multipart bool) {
		for _, dst := range []any{&MatchRequest{}, &EmbeddingsRequest{}, &RerankRequest{}, &VectorizeRequest{}} {
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			if multipart {
				r.Header.Set("Content-Type", "multipart/form-data; boundary=B")
			}
			r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<16)
			err := decodeRequest(r, dst)
			if err == nil {
				if e, ok := dst.(*EmbeddingsRequest); ok {
					_, err = parseEmbeddingInput(e.Input)
				}
			}
			if err == nil {
				continue
			}
			var mbe *http.MaxBytesError
			if ae := classify(err); ae.status < 400 || ae.status >= 500 || (ae.status != 400 && ae.status != 415 && !errors.As(err, &mbe)) {
				t.Fatalf("%T: status %d for %v", dst, ae.status, err)
			}
		}
		if _, _, err := imageBytes(string(body)); err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}
