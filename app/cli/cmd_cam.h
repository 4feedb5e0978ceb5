#pragma once

// `predict --cam DIR`: Grad-CAM overlays beside the predictions (cmd_cam.cpp).

#include <QStringList>

class QCommandLineParser;

namespace ifs {
class Classifier;
}

namespace ifs::cli {

/// --cam DIR, --cam-class NAME, --cam-opacity A.
void addCamOptions(QCommandLineParser &parser);

/// With --cam: writes one overlay PNG per readable image into DIR ("<name>.cam.png", numbered
/// when two images share a name), each written atomically, and says on stderr what failed.
/// Returns the number of images without an overlay (0 without --cam).
int writeCamOverlays(const QCommandLineParser &parser, Classifier &classifier,
                     const QStringList &images);

} // namespace ifs::cli
