package heatmap

import (
	"image"
	"image/color"
	"math"
)

// Small generated pictures, so that tests and the README example need no
// image files.

func lerp(a, b color.RGBA, f float64) color.RGBA {
	m := func(x, y uint8) uint8 { return uint8(float64(x) + (float64(y)-float64(x))*f + 0.5) }
	return color.RGBA{m(a.R, b.R), m(a.G, b.G), m(a.B, b.B), 255}
}

func inCircle(x, y, cx, cy, r int) bool { return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r }

// sceneBeach: sky, sun, sea and sand.
func sceneBeach(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			fy := float64(y) / float64(h)
			var c color.RGBA
			switch {
			case fy < 0.55:
				c = lerp(color.RGBA{80, 150, 230, 255}, color.RGBA{190, 225, 250, 255}, fy/0.55)
			case fy < 0.55+0.06*math.Sin(float64(x)/9)+0.12:
				c = lerp(color.RGBA{20, 90, 170, 255}, color.RGBA{40, 140, 200, 255}, (fy-0.55)/0.2)
			default:
				c = lerp(color.RGBA{235, 210, 150, 255}, color.RGBA{215, 185, 120, 255}, (fy-0.7)/0.3)
			}
			if inCircle(x, y, w*3/4, h/4, h/8) {
				c = color.RGBA{255, 220, 60, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// sceneForest: pine trees under a pale sky.
func sceneForest(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := lerp(color.RGBA{200, 220, 235, 255}, color.RGBA{230, 235, 225, 255}, float64(y)/float64(h))
			if y > h*4/5 {
				c = color.RGBA{70, 110, 50, 255}
			}
			for k, tx := range []int{w / 6, w / 2, w * 5 / 6, w / 3, w * 2 / 3} {
				top := h/6 + (k%2)*h/8
				bot := h * 4 / 5
				if y >= top && y < bot {
					half := (y - top) * w / 9 / (bot - top + 1)
					if x >= tx-half && x <= tx+half {
						c = lerp(color.RGBA{25, 90, 45, 255}, color.RGBA{40, 130, 60, 255}, float64(k)/5)
					}
				}
				if y >= bot && y < bot+h/14 && x >= tx-w/60-1 && x <= tx+w/60+1 {
					c = color.RGBA{100, 70, 40, 255}
				}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// sceneCity: a skyline at night with lit windows.
func sceneCity(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	type bld struct{ x0, x1, top int }
	var blds []bld
	for k, x := 0, 0; x < w; k++ {
		bw := w/8 + (k*37)%(w/8+1)
		blds = append(blds, bld{x, x + bw, h/4 + (k*53)%(h/2)})
		x += bw + 2
	}
	for y := range h {
		for x := range w {
			c := lerp(color.RGBA{10, 15, 45, 255}, color.RGBA{45, 40, 90, 255}, float64(y)/float64(h))
			if inCircle(x, y, w/6, h/6, h/14) {
				c = color.RGBA{240, 240, 220, 255}
			}
			for _, b := range blds {
				if x >= b.x0 && x < b.x1 && y >= b.top {
					c = color.RGBA{40, 45, 60, 255}
					if (x-b.x0)%6 >= 2 && (x-b.x0)%6 < 4 && (y-b.top)%7 >= 3 && (y-b.top)%7 < 5 && (x*7+y*3)%5 != 0 && x > b.x0+1 && x < b.x1-2 {
						c = color.RGBA{250, 210, 100, 255}
					}
				}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// sceneFruit: a bowl of fruit on a table.
func sceneFruit(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{235, 225, 205, 255}
			if y > h*3/5 {
				c = lerp(color.RGBA{150, 95, 55, 255}, color.RGBA{120, 75, 40, 255}, float64(y-h*3/5)/float64(h))
			}
			switch {
			case inCircle(x, y, w*2/5, h/2, h/7):
				c = color.RGBA{200, 30, 40, 255}
			case inCircle(x, y, w*3/5, h/2, h/7):
				c = color.RGBA{250, 160, 30, 255}
			case inCircle(x, y, w/2, h*2/5, h/7):
				c = color.RGBA{120, 180, 40, 255}
			}
			if y >= h/2 && y < h*7/10 {
				half := w / 4 * (h*7/10 - y) / (h / 5)
				if x >= w/2-half-w/20 && x <= w/2+half+w/20 && y >= h/2+h/20 {
					c = color.RGBA{230, 240, 245, 255}
				}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}
