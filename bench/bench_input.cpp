// ifs-bench-input: images/s of the training input pipeline (decode + transforms + batching) over
// one epoch of an ImageFolder, the peer of torchvision's DataLoader in bench/peer.py.
//
// Usage: ifs-bench-input ROOT [--pipeline CODE] [--workers N] [--batch B] [--exact]
// [--no-fast-decode] Prints one line: "<images/s> <images> <seconds> <path description>".
#include "base/allocator.h"
#include "dataset/imagefolder.h"
#include "transforms/batchloader.h"
#include "transforms/transformspec.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QStringList>

#include <cstdio>

using namespace ifs;

int main(int argc, char **argv)
{
    // As the app and ifstudio-cli-compute do at start-up.
    tuneAllocator();
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    if (args.size() < 2) {
        std::fprintf(stderr,
                     "usage: ifs-bench-input ROOT [--pipeline CODE] [--workers N] "
                     "[--batch B] [--exact] [--no-fast-decode]\n");
        return 2;
    }
    QString code = QStringLiteral(
        "T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), "
        "T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])");
    BatchLoaderOptions options;
    options.workers = 0;
    options.batchSize = 64;
    for (int i = 2; i < args.size(); ++i) {
        if (args[i] == u"--pipeline" && i + 1 < args.size())
            code = args[++i];
        else if (args[i] == u"--workers" && i + 1 < args.size())
            options.workers = args[++i].toInt();
        else if (args[i] == u"--batch" && i + 1 < args.size())
            options.batchSize = args[++i].toInt();
        else if (args[i] == u"--exact")
            options.fusedPath = false;
        else if (args[i] == u"--no-fast-decode")
            options.fastDecode = false;
        else {
            std::fprintf(stderr, "unknown argument %s\n", qPrintable(args[i]));
            return 2;
        }
    }
    const Result<ImageFolderIndex> index = scanImageFolder(args[1]);
    if (!index || !index->acceptedByTorchvision()) {
        std::fprintf(stderr, "cannot use %s: %s\n", qPrintable(args[1]),
                     qPrintable(index ? index->refusal : index.errorMessage()));
        return 1;
    }
    const Result<TransformPipeline> pipeline = parseTransforms(code);
    const Result<CompiledPipeline> compiled = pipeline ? CompiledPipeline::compile(pipeline.value())
                                                       : Result<CompiledPipeline>(pipeline.error());
    if (!compiled) {
        std::fprintf(stderr, "%s\n", qPrintable(compiled.errorMessage()));
        return 1;
    }
    std::vector<LoaderSample> samples;
    for (const Sample &s : index->samples)
        samples.push_back({index->absolutePath(s), s.classIndex});

    QElapsedTimer timer;
    timer.start();
    BatchLoader loader(std::move(samples), compiled.value(), options);
    loader.startEpoch(0);
    qint64 images = 0;
    double checksum = 0.0;
    while (std::optional<Batch> batch = loader.next()) {
        images += batch->count;
        checksum += batch->data.empty() ? 0.0 : double(batch->data[batch->data.size() / 2]);
        loader.recycle(std::move(*batch));
    }
    const double seconds = double(timer.nsecsElapsed()) / 1e9;
    if (!loader.failures().isEmpty())
        std::fprintf(stderr, "%lld images failed, e.g. %s: %s\n",
                     static_cast<long long>(loader.failures().size()),
                     qPrintable(loader.failures().first().path),
                     qPrintable(loader.failures().first().message));
    std::printf("%.1f %lld %.3f %s (checksum %.3f)\n", double(images) / seconds,
                static_cast<long long>(images), seconds, qPrintable(loader.pathDescription()),
                checksum);
    return 0;
}
