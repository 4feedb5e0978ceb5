#pragma once

#include <QImage>
#include <QPixmap>

namespace ifs {

/// A pixmap `side` pixels at most: shrunk smoothly, or enlarged by a whole factor without
/// smoothing (28 × 28 Fashion-MNIST digits stay crisp).
QPixmap fittedPixmap(const QImage &image, int side);

} // namespace ifs
