package blipcuda

// MatchSchemaVersion is the version of MatchDocument: it changes only if a
// field changes meaning or goes away.
const MatchSchemaVersion = 1

// MatchDocument is the JSON document of a match, the one form both
// `blipcuda match --format json` writes and the server's POST /v1/match
// returns. Matrices are indexed [image][text]; the ITM fields are null
// when only ITC was asked for (score "itc"), and ITC is null for "itm".
type MatchDocument struct {
	SchemaVersion int            `json:"schema_version"`
	Model         string         `json:"model"`     // the model as given (family name, Hub id or directory)
	Repo          string         `json:"repo"`      // its Hub repository, when known
	Protocol      string         `json:"protocol"`  // blip or hf
	Device        string         `json:"device"`    // cpu or cuda
	Precision     string         `json:"precision"` // float32, float16 or bfloat16
	Score         string         `json:"score"`     // itm, itc or both
	Images        []string       `json:"images"`
	Texts         []string       `json:"texts"`
	Truncated     []bool         `json:"truncated"` // per text: cut to the protocol's length
	ITMProb       [][]float32    `json:"itm_prob"`
	ITMLogits     [][][2]float32 `json:"itm_logits"` // [no-match, match]
	ITC           [][]float32    `json:"itc"`
}

// NewMatchDocument starts the document of a match with m, loaded as name,
// scored by score (itm, itc or both): its header, without images or
// results.
func NewMatchDocument(m *Model, name, score string, texts []string) MatchDocument {
	info := m.Info()
	return MatchDocument{SchemaVersion: MatchSchemaVersion, Model: name, Repo: info.Repo, Protocol: string(info.Protocol),
		Device: info.Device, Precision: info.Precision, Score: score, Texts: texts}
}

// AddScores appends the images of s with their ITM scores, and their ITC
// scores when d.Score is "both".
func (d *MatchDocument) AddScores(s *Scores) {
	d.Images = append(d.Images, s.Images...)
	d.ITMProb = append(d.ITMProb, s.ITMProb...)
	d.ITMLogits = append(d.ITMLogits, s.ITMLogits...)
	if d.Score == "both" {
		d.ITC = append(d.ITC, s.ITC...)
	}
	d.Truncated = s.Truncated
}

// AddITC appends images scored by ITC alone (score "itc", no multimodal
// encoder): the cosine of each image's embedding with each text's.
func (d *MatchDocument) AddITC(images []ImageEncoding, texts []TextEncoding) {
	for _, e := range images {
		d.Images = append(d.Images, e.Name)
		d.ITC = append(d.ITC, ITCRow(e.Embedding, texts))
	}
	d.Truncated = make([]bool, len(texts))
	for j, t := range texts {
		d.Truncated[j] = t.Truncated
	}
}
