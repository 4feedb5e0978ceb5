// ifstudio: the ImageFolder Studio desktop application.
#include "base/allocator.h"
#include "base/settings.h"
#include "base/version.h"
#include "checkpoint/checkpointfiles.h"
#include "common/backgroundjob.h"
#include "mainwindow.h"
#include "torch/runtime.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QMessageBox>

#include <cstdio>

int main(int argc, char **argv)
{
    // Before anything allocates (configureRuntime() below sets the threads).
    ifs::tuneAllocator();
    QApplication::setApplicationName(QStringLiteral("ImageFolder Studio"));
    QApplication::setOrganizationName(QStringLiteral("ImageFolderStudio"));
    QApplication::setApplicationVersion(QStringLiteral(IFS_VERSION));
    QApplication::setDesktopFileName(QStringLiteral("io.github.imagefolderstudio.ifstudio"));
    QApplication app(argc, argv);

    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("ImageFolder Studio: see what torchvision makes of an image folder, check "
                       "it, train on it."));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(QStringLiteral("DATASET"),
                                 QStringLiteral("A dataset folder to open (root/<class>/<image>, "
                                                "or with train/ and val/ splits)."),
                                 QStringLiteral("[DATASET]"));
    parser.addPositionalArgument(QStringLiteral("CHECKPOINT"),
                                 QStringLiteral("Checkpoint files (%1) to open in the Checkpoints "
                                                "workspace; two are compared.")
                                     .arg(ifs::ckpt::checkpointSuffixText()),
                                 QStringLiteral("[CHECKPOINT...]"));
    const QCommandLineOption threadsOption(
        QStringLiteral("threads"),
        QStringLiteral("Compute threads for libtorch (default: the setting, else all cores)."),
        QStringLiteral("N"));
    const QCommandLineOption screenshotOption(
        QStringLiteral("screenshot"),
        QStringLiteral("Open DATASET, wait for the scan and the thumbnails, save a screenshot of "
                       "the window to FILE and quit."),
        QStringLiteral("FILE"));
    const QCommandLineOption viewOption(
        QStringLiteral("screenshot-view"),
        QStringLiteral(
            "What the screenshot shows: images (default), health, transforms, "
            "transforms-policies (a recipe with RandomApply and TrivialAugmentWide), batch (its "
            "batch view), "
            "checkpoints, checkpoint-load, checkpoint-save, training (a short "
            "small_cnn run, taken live), evaluation (after a two-epoch run), lr-finder (the "
            "LR finder's plot), finetune (head-only fine-tuning from the weights file in "
            "IFS_SCREENSHOT_WEIGHTS), pretrained (resnet18 from ImageNet weights; offline, the "
            "message that says which file to put where), export (the Export dialog on the "
            "checkpoint given, after its export), gradcam (the Predict panel's heatmap after a "
            "two-epoch run) or mislabel (the Likely Mislabelled tab after a relabel)."),
        QStringLiteral("VIEW"), QStringLiteral("images"));
    parser.addOption(threadsOption);
    parser.addOption(viewOption);
    parser.addOption(screenshotOption);
    parser.process(app);

    int threads = ifs::Settings().computeThreads();
    if (parser.isSet(threadsOption)) {
        bool ok = false;
        threads = parser.value(threadsOption).toInt(&ok);
        if (!ok || threads < 1) {
            std::fprintf(stderr, "ifstudio: --threads needs a positive number, not \"%s\".\n",
                         qPrintable(parser.value(threadsOption)));
            return 2;
        }
    }
    ifs::configureRuntime(threads);

    int exitCode = 0;
    {
        ifs::MainWindow window;
        window.show();
        QStringList checkpoints;
        QString dataset;
        for (const QString &argument : parser.positionalArguments()) {
            if (ifs::MainWindow::isCheckpointPath(argument))
                checkpoints.append(argument);
            else if (dataset.isEmpty())
                dataset = argument;
        }
        if (!dataset.isEmpty())
            window.openDataset(dataset);
        if (!checkpoints.isEmpty())
            window.openCheckpoints(checkpoints);
        if (parser.isSet(screenshotOption))
            window.takeScreenshotAndQuit(parser.value(screenshotOption), parser.value(viewOption));
        exitCode = app.exec();
    }
    // Runs the window's jobs dropped on closing end here, while the application still exists.
    ifs::BackgroundJobBase::waitForAllRuns();
    return exitCode;
}
