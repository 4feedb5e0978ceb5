#include "image/jpegregion.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include <jpeglib.h>

namespace ifs {

namespace {

struct ErrorManager
{
    jpeg_error_mgr pub;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX] = {};
};

extern "C" void onJpegError(j_common_ptr cinfo)
{
    auto *err = reinterpret_cast<ErrorManager *>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
}

extern "C" void onJpegMessage(j_common_ptr cinfo, int level)
{
    // Warnings (level -1: corrupt data, premature end) make the decode fail: PIL raises for
    // truncated files, and the exact loader will say what is wrong.
    if (level < 0) {
        auto *err = reinterpret_cast<ErrorManager *>(cinfo->err);
        (*cinfo->err->format_message)(cinfo, err->message);
        std::longjmp(err->jump, 1);
    }
}

/// A decompressor whose destruction always releases libjpeg's memory.
struct Decompressor
{
    jpeg_decompress_struct cinfo{};
    ErrorManager err;

    Decompressor()
    {
        cinfo.err = jpeg_std_error(&err.pub);
        err.pub.error_exit = onJpegError;
        err.pub.emit_message = onJpegMessage;
        jpeg_create_decompress(&cinfo);
    }
    ~Decompressor() { jpeg_destroy_decompress(&cinfo); }
};

} // namespace

std::optional<JpegInfo> readJpegInfo(QByteArrayView data)
{
    if (data.size() < 4 || uchar(data[0]) != 0xFF || uchar(data[1]) != 0xD8)
        return std::nullopt;
    Decompressor d;
    if (setjmp(d.err.jump))
        return std::nullopt;
    jpeg_mem_src(&d.cinfo, reinterpret_cast<const unsigned char *>(data.data()),
                 static_cast<unsigned long>(data.size()));
    if (jpeg_read_header(&d.cinfo, TRUE) != JPEG_HEADER_OK)
        return std::nullopt;
    JpegInfo info;
    info.width = int(d.cinfo.image_width);
    info.height = int(d.cinfo.image_height);
    info.components = d.cinfo.num_components;
    const J_COLOR_SPACE space = d.cinfo.jpeg_color_space;
    info.rgbCompatible = space == JCS_YCbCr || space == JCS_RGB || space == JCS_GRAYSCALE;
    return info;
}

Result<QImage> decodeJpegRegion(QByteArrayView data, int denom, const QRect &region)
{
    if (denom != 1 && denom != 2 && denom != 4 && denom != 8)
        return Error{QStringLiteral("JPEG scale 1/%1 is not one of 1, 1/2, 1/4, 1/8").arg(denom)};
    // Everything with a destructor exists before setjmp: a longjmp must not skip one.
    Decompressor d;
    QImage out;
    std::vector<unsigned char> row;
    if (setjmp(d.err.jump))
        return Error{QStringLiteral("JPEG data: ") + QString::fromLocal8Bit(d.err.message)};
    jpeg_mem_src(&d.cinfo, reinterpret_cast<const unsigned char *>(data.data()),
                 static_cast<unsigned long>(data.size()));
    jpeg_read_header(&d.cinfo, TRUE);
    const J_COLOR_SPACE space = d.cinfo.jpeg_color_space;
    if (space != JCS_YCbCr && space != JCS_RGB && space != JCS_GRAYSCALE)
        return Error{QStringLiteral("JPEG colour space %1 needs the exact loader").arg(int(space))};
    d.cinfo.out_color_space = JCS_RGB;
    d.cinfo.scale_num = 1;
    d.cinfo.scale_denom = unsigned(denom);
    jpeg_start_decompress(&d.cinfo);
    const QRect whole(0, 0, int(d.cinfo.output_width), int(d.cinfo.output_height));
    if (!whole.contains(region) || region.isEmpty()) {
        jpeg_abort_decompress(&d.cinfo);
        return Error{QStringLiteral("the region is outside the decoded image")};
    }
    // Only the needed columns: libjpeg widens them to whole iMCUs and says where they start.
    // A margin of one iMCU (at most 32 pixels) on both sides keeps the chroma upsampling at the
    // region's edges identical to a whole decode (it reads the neighbouring columns).
    const int margin = 32;
    const int left = std::max(0, region.x() - margin);
    const int right = std::min(int(d.cinfo.output_width), region.x() + region.width() + margin);
    JDIMENSION xOffset = JDIMENSION(left);
    JDIMENSION cropWidth = JDIMENSION(right - left);
    if (xOffset != 0 || cropWidth != d.cinfo.output_width)
        jpeg_crop_scanline(&d.cinfo, &xOffset, &cropWidth);
    const int skipColumns = region.x() - int(xOffset);
    if (region.y() > 0)
        jpeg_skip_scanlines(&d.cinfo, JDIMENSION(region.y()));

    out = QImage(region.width(), region.height(), QImage::Format_RGB888);
    if (out.isNull()) {
        jpeg_abort_decompress(&d.cinfo);
        return Error{QStringLiteral("not enough memory for a %1 × %2 image")
                         .arg(region.width())
                         .arg(region.height())};
    }
    const bool direct = skipColumns == 0 && int(cropWidth) == region.width();
    if (int(xOffset) > region.x() || int(xOffset + cropWidth) < region.x() + region.width()) {
        jpeg_abort_decompress(&d.cinfo);
        return Error{QStringLiteral("libjpeg cropped the wrong columns")};
    }
    row.resize(direct ? 0 : size_t(cropWidth) * 3);
    for (int y = 0; y < region.height(); ++y) {
        JSAMPROW target = direct ? out.scanLine(y) : row.data();
        if (jpeg_read_scanlines(&d.cinfo, &target, 1) != 1) {
            jpeg_abort_decompress(&d.cinfo);
            return Error{QStringLiteral("JPEG data ended early")};
        }
        if (!direct)
            std::memcpy(out.scanLine(y), row.data() + size_t(skipColumns) * 3,
                        size_t(region.width()) * 3);
    }
    // The rows below the region are never decoded.
    jpeg_abort_decompress(&d.cinfo);
    return out;
}

} // namespace ifs
