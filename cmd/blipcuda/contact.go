package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"path/filepath"

	"github.com/blipcuda/blipcuda/heatmap"
	"github.com/blipcuda/blipcuda/imageproc"
)

// sheetThumb decodes an image file into a thumbnail; nil when it cannot
// be read (the sheet shows a placeholder).
func sheetThumb(path string) image.Image {
	img, err := imageproc.DecodeFile(path, 0)
	if err != nil {
		return nil
	}
	return thumbnail(img)
}

// cardLines are the score lines of a result.
func cardLines(r *searchResult, h searchHit) []string {
	if h.ITMProb == nil {
		return []string{fmt.Sprintf("ITC %.4f", h.ITC)}
	}
	return []string{fmt.Sprintf("score %.4f", h.Score), fmt.Sprintf("P(match) %.4f · ITC %.4f", *h.ITMProb, h.ITC)}
}

func sheetTitle(r *searchResult) (string, string) {
	title := "blipcuda search · " + filepath.Base(filepath.Clean(r.Model))
	if r.Index != "" {
		title += " · " + r.Index
	}
	n := min(r.K, r.Collection)
	sub := fmt.Sprintf("%s; top %d of %d candidates by ITC (k = %d, collection %d)", scoreNote(r.Score), min(r.Top, n),
		n, r.K, r.Collection)
	return title, sub
}

// writeContactSheet draws the results as a PNG (heatmap.ContactSheet) or
// a self-contained HTML page with the thumbnails inline.
func writeContactSheet(w io.Writer, kind string, r *searchResult) error {
	type card struct {
		thumb image.Image
		h     searchHit
	}
	var rows [][]card
	var queryThumbs []image.Image
	for _, q := range r.Queries {
		var row []card
		for _, h := range q.Results {
			c := card{h: h}
			if h.file != "" {
				c.thumb = sheetThumb(h.file)
			}
			row = append(row, c)
		}
		rows = append(rows, row)
		var qt image.Image
		if q.thumbPath != "" {
			qt = sheetThumb(q.thumbPath)
		}
		queryThumbs = append(queryThumbs, qt)
	}
	title, sub := sheetTitle(r)
	if kind == "png" {
		var sheet []heatmap.SheetRow
		for i, q := range r.Queries {
			sr := heatmap.SheetRow{Title: q.Query, Query: queryThumbs[i]}
			for _, c := range rows[i] {
				label := fmt.Sprintf("#%d %s", c.h.Rank, c.h.Image)
				if c.h.Text != "" {
					label = fmt.Sprintf("#%d", c.h.Rank)
				}
				sr.Cards = append(sr.Cards, heatmap.Card{Image: c.thumb, Text: c.h.Text, Label: label, Lines: cardLines(r, c.h)})
			}
			sheet = append(sheet, sr)
		}
		img, err := heatmap.ContactSheet(title, sub, sheet)
		if err != nil {
			return err
		}
		return png.Encode(w, img)
	}
	ew := &errWriter{w: w}
	esc := html.EscapeString
	ew.printf(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>
<style>
body{font-family:system-ui,sans-serif;margin:20px;color:#1f2328}
h1{font-size:20px;margin:0} p.sub{color:#59636e;margin:4px 0 16px}
h2{font-size:15px;margin:18px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{width:188px;font-size:12px;color:#59636e}
.card .box{width:172px;height:172px;display:flex;align-items:center;justify-content:center;background:#eef0f3;border:1px solid #afb8c1;overflow:hidden}
.card .box img{max-width:172px;max-height:172px}
.card .text{padding:8px;font-size:14px;color:#1f2328;align-self:flex-start}
.card .rank{color:#0b559c;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.query .box{border:2px solid #0b559c}
</style></head><body>
<h1>%s</h1><p class="sub">%s</p>
`, esc(title), esc(title), esc(sub))
	for i, q := range r.Queries {
		ew.printf("<h2>%s</h2><div class=\"cards\">\n", esc(q.Query))
		if queryThumbs[i] != nil {
			ew.printf("<div class=\"card query\"><div class=\"box\">%s</div><div>query</div></div>\n", imgTag(queryThumbs[i], q.Query))
		}
		for _, c := range rows[i] {
			box := `<div class="text">` + esc(c.h.Text) + `</div>`
			label := fmt.Sprintf("#%d", c.h.Rank)
			if c.h.Text == "" {
				box = imgTag(c.thumb, c.h.Image)
				label = fmt.Sprintf("#%d %s", c.h.Rank, c.h.Image)
			}
			ew.printf("<div class=\"card\"><div class=\"box\">%s</div><div class=\"rank\" title=\"%s\">%s</div>", box, esc(label), esc(label))
			for _, l := range cardLines(r, c.h) {
				ew.printf("<div>%s</div>", esc(l))
			}
			ew.printf("</div>\n")
		}
		if len(rows[i]) == 0 {
			ew.printf("<p>no results</p>\n")
		}
		ew.printf("</div>\n")
	}
	ew.printf("</body></html>\n")
	return ew.err
}

// imgTag is an <img> holding the thumbnail as an inline JPEG.
func imgTag(img image.Image, alt string) string {
	if img == nil {
		return "no image"
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}); err != nil {
		return "no image"
	}
	return fmt.Sprintf(`<img alt="%s" src="data:image/jpeg;base64,%s">`, html.EscapeString(alt), base64.StdEncoding.EncodeToString(b.Bytes()))
}
