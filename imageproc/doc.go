// Package imageproc turns image files into the pixel_values tensor that the
// BLIP image-text matching models expect, reproducing transformers' slow
// BlipImageProcessor (the PIL path, transformers 4.57.6 with Pillow 12.0.0)
// bit for bit.
//
// The pipeline is:
//
//  1. Decode (JPEG, PNG, GIF first frame, BMP, WebP) with a pixel limit that
//     is checked against the declared size before any pixel is decoded
//     (Decode, DecodeFile).
//  2. Convert to 8-bit RGB with Pillow's convert("RGB") semantics (ToRGB):
//     alpha is dropped, not composited; palettes are expanded; grey is
//     replicated; 16-bit data follows Pillow's rules.
//  3. Resize with a port of Pillow's BICUBIC resampler (ResizeBicubic),
//     bit-identical to Image.resize((w, h), Image.BICUBIC).
//  4. Rescale and normalise exactly as transformers does (float64 rescale,
//     cast to float32, float32 normalise) into a CHW float32 tensor
//     (Config.Preprocess; Config.Load does all four steps).
//
// Parity with Pillow: PNG, GIF, BMP, WebP (lossless and lossy; libwebp's
// chroma upsampling and YUV conversion are reproduced) and JPEG give bitwise
// the same pixel_values as transformers. JPEG is decoded by this package's
// own decoder (jpeg.go), which reproduces what Pillow's libjpeg-turbo does
// with Pillow's settings: the ISLOW integer IDCT, fancy chroma upsampling,
// libjpeg's colour-space rules and fixed-point YCbCr conversion, Pillow's
// CMYK handling. The tests against fixtures generated with Pillow and
// transformers (testdata/images, testdata/images/jpeg) require every pixel
// equal. No EXIF orientation is applied, as in BlipImageProcessor.
package imageproc
