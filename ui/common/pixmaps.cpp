#include "common/pixmaps.h"

#include <algorithm>

namespace ifs {

QPixmap fittedPixmap(const QImage &image, int side)
{
    if (image.isNull())
        return {};
    const int longest = std::max(image.width(), image.height());
    if (longest > side)
        return QPixmap::fromImage(
            image.scaled(side, side, Qt::KeepAspectRatio, Qt::SmoothTransformation));
    const int factor = std::max(1, side / std::max(1, longest));
    return QPixmap::fromImage(image.scaled(image.width() * factor, image.height() * factor,
                                           Qt::IgnoreAspectRatio, Qt::FastTransformation));
}

} // namespace ifs
