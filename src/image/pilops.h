#pragma once

// Pixel operations that reproduce Pillow 9.4 (and, where torchvision does not use PIL for a PIL
// input, torchvision 0.14's own code path) bit for bit on 8-bit images, so that a pipeline run here
// gives the pixels torchvision gives in Python.
//
// Images are QImage in QImage::Format_RGB888 (PIL mode "RGB") or QImage::Format_Grayscale8 (PIL
// mode "L"). Every function returns an image of the same format as its input unless it says
// otherwise, and a null QImage only when memory runs out.

#include <QImage>
#include <QRectF>
#include <QSize>

#include <array>
#include <optional>

namespace ifs::pil {

/// PIL's resampling filters (PIL.Image.Resampling; torchvision's InterpolationMode maps
/// NEAREST, BILINEAR, BICUBIC, BOX, HAMMING, LANCZOS onto them).
enum class Filter { Nearest, Box, Bilinear, Hamming, Bicubic, Lanczos };

/// A fill colour as torchvision passes it to PIL: one value per channel (an int fill is
/// repeated for RGB). Values are clamped to 0..255.
using Fill = std::array<int, 3>;

/// Image.resize(size, filter, box): Pillow's separable convolution resampler (antialiased when
/// shrinking: the filter support grows with the scale), with its fixed-point coefficients and 8-bit
/// rounding between the horizontal and the vertical pass. Nearest uses pixel centres as Pillow
/// does. `box` is the source region (PIL's box argument); the whole image when null. A box
/// reaching outside the image is clamped to it (PIL raises ValueError there).
/// Equal sizes with the whole box return a copy.
QImage resize(const QImage &image, QSize size, Filter filter, const QRectF &box = {});

/// Image.crop((left, top, left + width, top + height)): the parts outside the image are black
/// (zero), as in PIL.
QImage crop(const QImage &image, const QRect &rect);

/// Image.transpose(FLIP_LEFT_RIGHT) and (FLIP_TOP_BOTTOM).
QImage flipLeftRight(const QImage &image);
QImage flipTopBottom(const QImage &image);

/// Image.transpose() operations, also used to apply EXIF orientation (ImageOps.exif_transpose).
enum class Transpose {
    FlipLeftRight,
    FlipTopBottom,
    Rotate90,
    Rotate180,
    Rotate270,
    Transpose,
    Transverse
};
QImage transpose(const QImage &image, Transpose op);

/// ImageOps.exif_transpose's pixel operation for an EXIF orientation 1..8 (1 and unknown values
/// return the image unchanged).
QImage applyExifOrientation(const QImage &image, int orientation);

/// torchvision.transforms.functional.pad on a PIL image.
enum class PadMode { Constant, Edge, Reflect, Symmetric };
QImage pad(const QImage &image, int left, int top, int right, int bottom, PadMode mode,
           const Fill &fill = {0, 0, 0});

/// Image.transform(size, Image.AFFINE, data=matrix, resample=filter, fillcolor=fill): `matrix`
/// (a, b, c, d, e, f) maps each output pixel (x, y) to the input point (a x + b y + c,
/// d x + e y + f), as PIL's AFFINE does. Only Nearest, Bilinear and Bicubic are valid filters:
/// the others give a null QImage (PIL raises ValueError).
QImage transformAffine(const QImage &image, QSize size, const std::array<double, 6> &matrix,
                       Filter filter, const Fill &fill);

/// Image.rotate(angle, resample=filter, expand=expand, center=center, fillcolor=fill):
/// counter-clockwise degrees, PIL's centre (width / 2, height / 2) when not given, PIL's shortcuts
/// for 0/90/180/270 degrees included.
QImage rotate(const QImage &image, double angle, Filter filter, bool expand,
              std::optional<QPointF> center, const Fill &fill);

/// Image.convert("L") of an RGB image (ITU-R 601-2 luma in PIL's fixed point); a gray image is
/// returned as it is.
QImage toGray(const QImage &image);
/// Image.convert("RGB") of a gray image; an RGB image is returned as it is.
QImage toRgb(const QImage &image);

/// Image.blend(a, b, alpha) = a * (1 - alpha) + b * alpha, clipped to 0..255, as Pillow rounds it.
/// a and b have the same size and format.
QImage blend(const QImage &a, const QImage &b, double alpha);

/// torchvision's F.adjust_brightness / adjust_contrast / adjust_saturation / adjust_hue on a PIL
/// image (PIL.ImageEnhance, and the HSV round trip with numpy's uint8 hue shift for hue).
QImage adjustBrightness(const QImage &image, double factor);
QImage adjustContrast(const QImage &image, double factor);
QImage adjustSaturation(const QImage &image, double factor);
/// hueFactor in [-0.5, 0.5]. Gray images are returned unchanged, as torchvision does.
QImage adjustHue(const QImage &image, double hueFactor);

/// torchvision 0.14's F.gaussian_blur on a PIL image: the image goes through a uint8 tensor, a
/// float32 Gaussian kernel (odd sizes kx, ky; sigmas sx, sy), reflect padding, conv2d,
/// rounding back to uint8. torch 1.13's float32 kernel values (Sleef exp, its summation order)
/// and conv2d's accumulation order (fused multiply-adds, kernel rows outer) are reproduced: exact
/// against torch's AVX2 CPU kernels; another torch build may round a rare value by 1.
QImage gaussianBlur(const QImage &image, int kx, int ky, double sx, double sy);

/// Image.transform(size, Image.PERSPECTIVE, data=coeffs, resample=filter, fillcolor=fill):
/// each output pixel (x, y) samples the input at ((a x + b y + c) / (g x + h y + 1),
/// (d x + e y + f) / (g x + h y + 1)) with x, y at pixel centres, as Geometry.c's generic
/// transform does. Nearest, Bilinear and Bicubic only (a null QImage otherwise).
QImage transformPerspective(const QImage &image, QSize size, const std::array<double, 8> &coeffs,
                            Filter filter, const Fill &fill);

/// ImageOps.invert: 255 - v.
QImage invert(const QImage &image);
/// ImageOps.posterize(image, bits): each value keeps its top `bits` bits (0..8).
QImage posterize(const QImage &image, int bits);
/// ImageOps.solarize(image, threshold): values at or above threshold are inverted.
QImage solarize(const QImage &image, double threshold);
/// ImageOps.autocontrast(image): each channel stretched from its darkest to its lightest value.
QImage autocontrast(const QImage &image);
/// ImageOps.equalize(image): each channel's histogram equalized, Pillow's integer steps.
QImage equalize(const QImage &image);
/// ImageEnhance.Sharpness(image).enhance(factor): a blend with image.filter(ImageFilter.SMOOTH)
/// (Filter.c's 3x3 float kernel; the one-pixel border keeps its values).
QImage adjustSharpness(const QImage &image, double factor);

} // namespace ifs::pil
