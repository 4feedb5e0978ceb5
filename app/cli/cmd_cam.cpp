// ifstudio-cli predict --cam DIR: a Grad-CAM overlay per image (training/gradcam.h).
#include "cmd_cam.h"

#include "commands.h"

#include "training/evaluation.h"
#include "training/gradcam.h"

#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QSet>

namespace ifs::cli {

void addCamOptions(QCommandLineParser &parser)
{
    parser.addOption({QStringLiteral("cam"),
                      QStringLiteral("write a Grad-CAM overlay PNG per image into DIR"),
                      QStringLiteral("DIR")});
    parser.addOption({QStringLiteral("cam-class"),
                      QStringLiteral("explain this class (name or index) instead of the "
                                     "predicted one"),
                      QStringLiteral("CLASS")});
    parser.addOption({QStringLiteral("cam-opacity"),
                      QStringLiteral("the heatmap's opacity over the image, 0..1 (default 0.5)"),
                      QStringLiteral("A")});
}

namespace {

/// The class --cam-class names (a class name first, else an index); -1: the predicted class.
bool camClass(const QCommandLineParser &parser, const QStringList &classes, int &index)
{
    index = -1;
    if (!parser.isSet(QStringLiteral("cam-class")))
        return true;
    const QString value = parser.value(QStringLiteral("cam-class"));
    index = int(classes.indexOf(value));
    bool ok = index >= 0;
    if (!ok)
        index = value.toInt(&ok);
    if (ok && index >= 0 && index < classes.size())
        return true;
    printError(QStringLiteral("--cam-class: the model has no class “%1” (%2)")
                   .arg(value, classes.join(QStringLiteral(", "))));
    return false;
}

QString overlayPath(const QString &dir, const QString &image, QSet<QString> &used)
{
    const QString base = QFileInfo(image).completeBaseName();
    QString name = base + QStringLiteral(".cam.png");
    for (int n = 2; used.contains(name); ++n)
        name = base + QStringLiteral("-%1.cam.png").arg(n);
    used.insert(name);
    return dir + u'/' + name;
}

} // namespace

int writeCamOverlays(const QCommandLineParser &parser, Classifier &classifier,
                     const QStringList &images)
{
    if (!parser.isSet(QStringLiteral("cam")))
        return 0;
    const QString dir = parser.value(QStringLiteral("cam"));
    GradCamOptions options;
    bool ok = true;
    double opacity = 0.5;
    if (parser.isSet(QStringLiteral("cam-opacity")))
        opacity = parser.value(QStringLiteral("cam-opacity")).toDouble(&ok);
    if (!ok || opacity < 0.0 || opacity > 1.0) {
        printError(QStringLiteral("--cam-opacity must be a number from 0 to 1"));
        return int(images.size());
    }
    if (!camClass(parser, classifier.classes(), options.classIndex))
        return int(images.size());
    if (!QDir().mkpath(dir)) {
        printError(QStringLiteral("cannot create the folder “%1”").arg(dir));
        return int(images.size());
    }
    int failed = 0;
    QSet<QString> used;
    for (const QString &image : images) {
        auto cam = computeGradCam(classifier, image, options);
        const QString path = overlayPath(dir, image, used);
        const Status written = cam ? writePngAtomically(gradCamOverlay(cam.value(), opacity), path)
                                   : Status(cam.error());
        if (!written) {
            printErr(QStringLiteral("%1: no Grad-CAM: %2").arg(image, written.errorMessage()));
            ++failed;
        }
    }
    return failed;
}

} // namespace ifs::cli
