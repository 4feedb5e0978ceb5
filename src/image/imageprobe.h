#pragma once

#include "base/result.h"

#include <QImage>
#include <QSize>
#include <QString>

#include <QByteArrayView>

#include <cstdint>
#include <memory>

namespace ifs {

/// Pixel layout of a file as PIL would name its mode (torchvision's loader converts all to "RGB").
enum class PixelMode {
    Unknown,
    Gray, ///< PIL "L" (8-bit) or "1"
    GrayAlpha, ///< PIL "LA"
    Gray16, ///< PIL "I;16" (16-bit gray PNG/TIFF/PGM)
    RGB,
    RGBA,
    RGB16, ///< 16 bits per channel RGB(A) PNG/TIFF
    Palette, ///< PIL "P"
    CMYK,
    YCCK,
};

/// PIL's mode string for the mode ("L", "RGB", "P", "CMYK", "I;16", ...). Pillow 9.4 itself reports
/// "I" for 16-bit gray PNG and PGM files and "CMYK" for YCCK JPEGs.
QString pixelModeName(PixelMode mode);

/// PIL.Image.MAX_IMAGE_PIXELS: above it PIL warns (DecompressionBombWarning); above twice it,
/// Image.open() raises DecompressionBombError, so torchvision's loader fails.
inline constexpr int64_t kPilMaxImagePixels = 89'478'485;

/// What the file header says, read without decoding the pixels.
struct ImageHeader
{
    QString format; ///< "JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF", "PPM" (magic bytes)
    QSize size; ///< Pixel size from the header
    PixelMode mode = PixelMode::Unknown;
    int bitDepth = 0; ///< Bits per channel
    int exifOrientation = 1; ///< 1..8; 1 when absent
    bool hasAlpha = false; ///< an alpha channel or transparency (convert("RGB") drops it)
    int64_t fileSize = 0;

    int64_t pixelCount() const { return int64_t(size.width()) * size.height(); }
};

/// Reads the header of an image file (magic bytes, dimensions, mode, EXIF orientation).
/// Fails with a message naming the file when it is empty, not an image, or its header is broken.
Result<ImageHeader> probeImage(const QString &path);

/// Decodes an image as torchvision's default loader would see it (8-bit RGB, EXIF ignored),
/// scaled down to fit `maxSize` (keeping the aspect ratio) when maxSize is valid.
/// Uses reduced-size decoding for speed; for thumbnails and previews.
///
/// The pixels match PIL's `Image.open(f).convert("RGB")`: alpha is dropped (not blended), palette
/// and gray are expanded, 16-bit gray values above 255 are clipped to 255 (PIL's "I" to "RGB"
/// conversion), 16-bit colour keeps the high byte, and CMYK JPEGs are read as Adobe-inverted with
/// R = (255 - C) * (255 - K) / 255. Fails, like PIL, on truncated files and on images beyond twice
/// kPilMaxImagePixels (without decoding them). Thread-safe.
Result<QImage> loadImageRgb(const QString &path, QSize maxSize = {});
/// Decodes the bytes of an image file as loadImageRgb() does (`name` names it in errors); a JPEG
/// at the largest DCT reduction (1/2, 1/4, 1/8) that keeps both sides at least `minSize` when
/// that is valid, other formats at full size. For a pass that holds the bytes already (the
/// health check's perceptual hashes).
Result<QImage> decodeImageRgb(QByteArrayView data, const QString &name, QSize minSize = {});

/// What checking one file the way torchvision's loader opens it found.
struct ImageCheck
{
    enum class Status {
        Ok, ///< PIL would load it
        Empty, ///< 0 bytes
        NotAnImage, ///< no image signature PIL knows (text, HTML, random bytes)
        Truncated, ///< the data stops before the image does
        Broken, ///< a header or the compressed data is invalid
        TooLarge, ///< beyond PIL's decompression-bomb limit: refused without decoding
        ReadFailed, ///< the file could not be opened or read
    };
    Status status = Status::Ok;
    bool headerValid = false; ///< `header` holds what the header says
    ImageHeader header;
    /// Status Ok, but the file lacks its end marker (a PNG without IEND): PIL still loads it.
    bool missingTrailer = false;
    /// Why, as a sentence fragment naming the file ("“a.jpg” is empty (0 bytes)"); empty when
    /// there is nothing to say.
    QString message;
};

/// Checks files one after the other, keeping its read and decode buffers between calls. Use one per
/// thread; it is not thread-safe itself.
class ImageChecker
{
public:
    ImageChecker();
    ~ImageChecker();
    ImageChecker(const ImageChecker &) = delete;
    ImageChecker &operator=(const ImageChecker &) = delete;

    /// Reads `path` whole, probes it, checks its structure (truncation) and decodes it fully unless
    /// it is too large. `name` is how messages name the file (e.g. "train/cat/001.jpg").
    ImageCheck check(const QString &path, const QString &name);
    /// The bytes of the file last checked (valid until the next check()).
    QByteArrayView data() const;

private:
    struct Private;
    std::unique_ptr<Private> d;
};

} // namespace ifs
