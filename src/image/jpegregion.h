#pragma once

// Partial JPEG decoding with libjpeg-turbo: only the rows and columns a crop needs, optionally at
// 1/2, 1/4 or 1/8 scale (the DCT does the shrinking). The training input pipeline uses it to
// skip most of the decoding work of RandomResizedCrop; at full scale the pixels are exactly
// those of a whole decode (PIL's and OpenCV's: libjpeg's default islow DCT and fancy upsampling).

#include "base/result.h"

#include <QByteArrayView>
#include <QImage>
#include <QRect>

#include <optional>

namespace ifs {

struct JpegInfo
{
    int width = 0;
    int height = 0;
    int components = 0;
    /// YCbCr, RGB or gray: what converts to RGB as PIL converts it. CMYK/YCCK JPEGs are not.
    bool rgbCompatible = false;
};

/// The size and colour layout from a JPEG's header; nullopt when data is not a readable JPEG.
std::optional<JpegInfo> readJpegInfo(QByteArrayView data);

/// The size of the whole image decoded at 1/denom scale (libjpeg rounds up).
inline int jpegScaledSize(int size, int denom)
{
    return (size + denom - 1) / denom;
}

/// Decodes `region` (in the coordinates of the image scaled by 1/denom, denom = 1, 2, 4 or 8)
/// to an 8-bit RGB image of exactly region's size. Fails on corrupt or truncated data (any
/// libjpeg warning counts), so that the caller can fall back to the exact loader and its
/// messages.
Result<QImage> decodeJpegRegion(QByteArrayView data, int denom, const QRect &region);

} // namespace ifs
