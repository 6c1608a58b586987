package heatmap

import (
	"image/color"
	"math"
)

// viridisStops are 17 samples of matplotlib's viridis colour map (Stéfan van
// der Walt and Nathaniel Smith, CC0): entries 0, 16, 32, …, 240 and 255 of
// its 256-entry table, as sRGB in [0, 1], with their positions on [0, 1].
// Viridis is perceptually uniform (equal steps in value look like equal
// steps in colour), monotonic in lightness (it reads in greyscale) and safe
// for the common forms of colour blindness. Linear interpolation between
// these stops stays within about 1/255 of the full table.
var viridisStops = [...]struct{ t, r, g, b float64 }{
	{0.0 / 255, 0.267004, 0.004874, 0.329415},
	{16.0 / 255, 0.282327, 0.094955, 0.417331},
	{32.0 / 255, 0.278826, 0.175490, 0.483397},
	{48.0 / 255, 0.258965, 0.251537, 0.524736},
	{64.0 / 255, 0.229739, 0.322361, 0.545706},
	{80.0 / 255, 0.199430, 0.387607, 0.554642},
	{96.0 / 255, 0.172719, 0.448791, 0.557885},
	{112.0 / 255, 0.149039, 0.508051, 0.557250},
	{128.0 / 255, 0.127568, 0.566949, 0.550556},
	{144.0 / 255, 0.120638, 0.625828, 0.533488},
	{160.0 / 255, 0.157851, 0.683765, 0.501686},
	{176.0 / 255, 0.246070, 0.738910, 0.452024},
	{192.0 / 255, 0.369214, 0.788888, 0.382914},
	{208.0 / 255, 0.515992, 0.831158, 0.294279},
	{224.0 / 255, 0.678489, 0.863742, 0.189503},
	{240.0 / 255, 0.845561, 0.887322, 0.099702},
	{255.0 / 255, 0.993248, 0.906157, 0.143936},
}

// Viridis returns the colour of the viridis map at t in [0, 1]: dark purple
// at 0, through blue and green, to yellow at 1. t is clamped to [0, 1]; NaN
// gives the colour at 0. It interpolates linearly, in sRGB, between 17
// control points sampled from matplotlib's table, and is the colour map of
// every heat map this package draws.
func Viridis(t float64) color.RGBA {
	if !(t > 0) { // t <= 0 or NaN
		t = 0
	}
	if t > 1 {
		t = 1
	}
	s := viridisStops[:]
	i := 1
	for i < len(s)-1 && s[i].t < t {
		i++
	}
	a, b := s[i-1], s[i]
	f := (t - a.t) / (b.t - a.t)
	mix := func(x, y float64) uint8 {
		return uint8(math.Round(255 * (x + (y-x)*f)))
	}
	return color.RGBA{R: mix(a.r, b.r), G: mix(a.g, b.g), B: mix(a.b, b.b), A: 255}
}

// luminance is the WCAG relative luminance of an sRGB colour, in [0, 1].
func luminance(c color.RGBA) float64 {
	lin := func(v uint8) float64 {
		x := float64(v) / 255
		if x <= 0.04045 {
			return x / 12.92
		}
		return math.Pow((x+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.R) + 0.7152*lin(c.G) + 0.0722*lin(c.B)
}

// contrastRatio is the WCAG contrast ratio of two relative luminances.
func contrastRatio(l1, l2 float64) float64 {
	if l1 < l2 {
		l1, l2 = l2, l1
	}
	return (l1 + 0.05) / (l2 + 0.05)
}

// textOn picks the dark or the light text colour, whichever contrasts
// more with the background bg.
func textOn(bg color.RGBA) color.RGBA {
	l := luminance(bg)
	if contrastRatio(l, luminance(inkDark)) >= contrastRatio(l, luminance(inkLight)) {
		return inkDark
	}
	return inkLight
}
