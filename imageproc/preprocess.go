package imageproc

import (
	"errors"
	"fmt"
)

// OutputSize returns the height and width of the pixel_values that Preprocess
// produces for an input of size w×h: (Height, Width) when DoResize is set,
// (h, w) otherwise.
func (c Config) OutputSize(w, h int) (outH, outW int) {
	if c.DoResize {
		return c.Height, c.Width
	}
	return h, w
}

// Preprocess turns an RGB image into pixel_values, a CHW float32 tensor
// [3, H, W] (H, W from OutputSize), exactly as transformers' slow
// BlipImageProcessor does on a PIL image (transformers 4.57.6):
//
//  1. Resize with Pillow's BICUBIC to Height×Width (ResizeBicubic), when
//     DoResize.
//  2. Rescale: float32(float64(p) · RescaleFactor), when DoRescale
//     (image_transforms.rescale upcasts to float64, then casts to float32).
//  3. Normalise: (x − float32(mean)) / float32(std), each operation in
//     float32, when DoNormalize (image_transforms.normalize builds mean and
//     std as arrays of the image's dtype). Without rescale the uint8 values
//     are first cast to float32, as normalize does.
//
// The values are bitwise equal to BlipImageProcessor(...)(img,
// return_tensors="np")["pixel_values"][0] for the same RGB input. (With
// neither rescale nor normalise transformers returns uint8; the same values
// are returned here as float32.)
//
// One deliberate difference: transformers guesses the channel axis from the
// array shape and takes an image whose height is 1 or 3 for channels-first,
// so it fails (height 1) or returns garbage (height 3) for such images unless
// input_data_format="channels_last" is passed. Preprocess always treats the
// input as the RGB image it is, which equals transformers with
// input_data_format="channels_last".
func (c Config) Preprocess(img *RGB) ([]float32, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !img.valid() {
		return nil, errors.New("imageproc: Preprocess: empty or inconsistent RGB image")
	}
	if c.DoResize {
		img = ResizeBicubic(img, c.Width, c.Height)
	}
	lut := c.valueTable()
	plane := img.W * img.H
	out := make([]float32, 3*plane)
	for ch := 0; ch < 3; ch++ {
		t := &lut[ch]
		dst := out[ch*plane : (ch+1)*plane]
		src := img.Pix[ch:]
		for i := range dst {
			dst[i] = t[src[3*i]]
		}
	}
	return out, nil
}

// valueTable maps each channel's 8-bit value to its output float. Every
// output value depends only on (channel, value), so a table gives the same
// bits as computing each pixel.
func (c Config) valueTable() [3][256]float32 {
	var lut [3][256]float32
	for ch := 0; ch < 3; ch++ {
		mean := float32(c.ImageMean[ch])
		std := float32(c.ImageStd[ch])
		for p := 0; p < 256; p++ {
			v := float32(p)
			if c.DoRescale {
				v = float32(float64(p) * c.RescaleFactor)
			}
			if c.DoNormalize {
				d := v - mean // float32 operations, rounded separately
				v = d / std
			}
			lut[ch][p] = v
		}
	}
	return lut
}

// Load decodes the image file at path (see DecodeFile; maxPixels ≤ 0 selects
// DefaultMaxPixels), converts it to RGB and preprocesses it (see Preprocess).
//
// Images are always converted to RGB, whatever DoConvertRGB says: with
// do_convert_rgb=false transformers fails on non-RGB images (wrong channel
// count), and on RGB images conversion changes nothing.
func (c Config) Load(path string, maxPixels int) ([]float32, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	img, release, err := DecodeFileHeld(path, maxPixels)
	defer release()
	if err != nil {
		return nil, err
	}
	out, err := c.Preprocess(img)
	if err != nil {
		return nil, fmt.Errorf("imageproc: %s: %w", path, err)
	}
	return out, nil
}
