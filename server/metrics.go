package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/blipcuda/blipcuda/batcher"
)

// metrics are the server's Prometheus collectors (namespace blipcuda).
type metrics struct {
	requests      *prometheus.CounterVec   // route, code
	latency       *prometheus.HistogramVec // route
	batchRequests *prometheus.HistogramVec // kind
	batchInputs   *prometheus.HistogramVec // kind, input (images|texts)
	batchSeconds  *prometheus.HistogramVec // kind
	batchErrors   *prometheus.CounterVec   // kind
	images, texts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	sizes := []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "blipcuda", Name: "http_requests_total",
			Help: "HTTP requests by route and status code (499: the client went away)."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "blipcuda", Name: "http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"route"}),
		batchRequests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "blipcuda", Name: "batch_requests",
			Help: "Requests run together per batch, by kind (match, embed_images, embed_texts).", Buckets: sizes}, []string{"kind"}),
		batchInputs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "blipcuda", Name: "batch_inputs",
			Help: "Images and texts per batch, by kind.", Buckets: sizes}, []string{"kind", "input"}),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "blipcuda", Name: "batch_duration_seconds",
			Help: "Model time per batch, by kind.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"kind"}),
		batchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "blipcuda", Name: "batch_errors_total",
			Help: "Batches that failed as a whole (their requests were then run one by one)."}, []string{"kind"}),
		images: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "blipcuda", Name: "images_processed_total",
			Help: "Images in successful requests."}),
		texts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "blipcuda", Name: "texts_processed_total",
			Help: "Texts in successful requests."}),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "blipcuda", Name: "queue_depth",
		Help: "Requests waiting for the model."}, func() float64 { return float64(s.b.QueueDepth()) })
	mem := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "blipcuda", Name: "device_memory_in_use_bytes",
		Help: "Device memory allocated by the model's arenas (0 on the CPU backend)."}, func() float64 {
		_, inUse, _ := s.m.DeviceMemory()
		return float64(inUse)
	})
	reserved := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "blipcuda", Name: "device_memory_reserved_bytes",
		Help: "Device memory reserved from the driver by the model's arenas (0 on the CPU backend)."}, func() float64 {
		r, _, _ := s.m.DeviceMemory()
		return float64(r)
	})
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "blipcuda", Name: "ready",
		Help: "1 while the server takes work (model loaded, device healthy, not draining)."}, func() float64 {
		if s.readiness() == nil {
			return 1
		}
		return 0
	})
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.batchRequests, m.batchInputs, m.batchSeconds,
		m.batchErrors, m.images, m.texts, queue, mem, reserved, ready} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observeRequest(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) processed(images, texts int) {
	m.images.Add(float64(images))
	m.texts.Add(float64(texts))
}

// ObserveBatch records a batch; pass it as batcher.Options.Observe (see
// BatchObserver).
func (m *metrics) observeBatch(st batcher.Stats) {
	k := string(st.Kind)
	m.batchRequests.WithLabelValues(k).Observe(float64(st.Requests))
	m.batchInputs.WithLabelValues(k, "images").Observe(float64(st.Images))
	m.batchInputs.WithLabelValues(k, "texts").Observe(float64(st.Texts))
	m.batchSeconds.WithLabelValues(k).Observe(st.Duration.Seconds())
	if st.Err != nil {
		m.batchErrors.WithLabelValues(k).Inc()
	}
}
