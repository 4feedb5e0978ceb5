#pragma once

#include "result.h"

#include <QImage>
#include <QSize>
#include <QString>

#include <cstdint>

namespace ifs {

/// Pixel layout of a file as PIL would name its mode (torchvision's loader converts all to "RGB").
enum class PixelMode {
    Unknown,
    Gray,      ///< PIL "L" (8-bit) or "1"
    GrayAlpha, ///< PIL "LA"
    Gray16,    ///< PIL "I;16" (16-bit gray PNG/TIFF/PGM)
    RGB,
    RGBA,
    RGB16,     ///< 16 bits per channel RGB(A) PNG/TIFF
    Palette,   ///< PIL "P"
    CMYK,
    YCCK,
};

/// PIL's mode string for the mode ("L", "RGB", "P", "CMYK", "I;16", ...).
QString pixelModeName(PixelMode mode);

/// What the file header says, read without decoding the pixels.
struct ImageHeader
{
    QString format;           ///< "JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF", "PPM", ... from the magic bytes
    QSize size;               ///< Pixel size from the header
    PixelMode mode = PixelMode::Unknown;
    int bitDepth = 0;         ///< Bits per channel
    int exifOrientation = 1;  ///< 1..8; 1 when absent
    int64_t fileSize = 0;
};

/// Reads the header of an image file (magic bytes, dimensions, mode, EXIF orientation).
/// Fails with a message naming the file when it is empty, not an image, or its header is broken.
Result<ImageHeader> probeImage(const QString &path);

/// Decodes an image as torchvision's default loader would see it (8-bit RGB, EXIF ignored),
/// scaled down to fit `maxSize` (keeping the aspect ratio) when maxSize is valid.
/// Uses reduced-size decoding for speed; for thumbnails and previews.
Result<QImage> loadImageRgb(const QString &path, QSize maxSize = {});

} // namespace ifs
