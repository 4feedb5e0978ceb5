// The batch loader: the fused JPEG crop-decode path gives exactly the engine's tensors, the
// reduced-scale path stays close, epochs are deterministic permutations, broken images are
// skipped and listed, and cancel stops it.
#include "testutil.h"

#include "base/filenames.h"
#include "dataset/imagefolder.h"
#include "image/jpegregion.h"
#include "transforms/batchloader.h"
#include "transforms/transforms.h"

#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include <sys/resource.h>

using namespace ifs;

namespace {

const char kTrain[] = "T.Compose([T.RandomResizedCrop(96), T.RandomHorizontalFlip(), T.ToTensor(), "
                      "T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])";

CompiledPipeline compile(const char *source)
{
    return CompiledPipeline::compile(parseTransforms(QString::fromUtf8(source)).value()).value();
}

struct Epoch
{
    std::vector<std::vector<float>> data;
    std::vector<int> order;
    std::vector<int64_t> labels;
};

Epoch runEpoch(BatchLoader &loader, int epoch)
{
    Epoch e;
    loader.startEpoch(epoch);
    while (std::optional<Batch> batch = loader.next()) {
        e.data.push_back(batch->data);
        e.order.insert(e.order.end(), batch->sampleIndices.begin(), batch->sampleIndices.end());
        e.labels.insert(e.labels.end(), batch->labels.begin(), batch->labels.end());
    }
    return e;
}

} // namespace

class TstBatchLoader : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::vector<LoaderSample> m_samples; // JPEGs of several sizes, two classes, a gray one

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        // Real JPEG files: photo-like content, 4:2:0 and 4:4:4 chroma, gray, odd sizes, and one
        // large enough for 1/2 and 1/4 scale decoding.
        const QString script = QStringLiteral(R"(
import sys, os, numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(7)
sizes = [(500, 375), (375, 500), (333, 251), (640, 480), (1600, 1200), (97, 203), (500, 375)]
for k, (w, h) in enumerate(sizes * 3):
    cls = 'cat' if k % 2 else 'dog'
    os.makedirs(os.path.join(root, cls), exist_ok=True)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(x / (9.0 + k)), 100 + 0.3 * y + 20 * np.cos((x + y) / 5.0),
                    200 - 0.2 * y + 0 * x], -1) + rng.normal(0, 15, (h, w, 3))
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), 'RGB')
    if k % 7 == 3:
        im = im.convert('L')
    im.save(os.path.join(root, cls, '%02d.jpg' % k), quality=88, subsampling=(0 if k % 3 == 0 else 2))
)");
        const test::ProcessResult r
            = test::runProcess(test::oraclePython(), {QStringLiteral("-c"), script, m_dir.path()});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        for (const QString &cls : {QStringLiteral("cat"), QStringLiteral("dog")})
            for (const QString &name :
                 QDir(m_dir.filePath(cls))
                     .entryList({QStringLiteral("*.jpg")}, QDir::Files, QDir::Name))
                m_samples.push_back({m_dir.filePath(cls + u'/' + name), cls == u"cat" ? 0 : 1});
        QCOMPARE(m_samples.size(), size_t(21));
    }

    void regionDecodeEqualsWholeDecode()
    {
        // At full scale the decoded crop is the crop of the whole decode (which matches PIL).
        for (const LoaderSample &s : m_samples) {
            QFile f(s.path);
            QVERIFY(f.open(QIODevice::ReadOnly));
            const QByteArray bytes = f.readAll();
            const std::optional<JpegInfo> info = readJpegInfo(bytes);
            QVERIFY(info.has_value());
            const QImage whole = loadTransformInput(s.path).value();
            QCOMPARE(QSize(info->width, info->height), whole.size());
            for (const QRect &region :
                 {QRect(info->width / 3 + 5, info->height / 4 + 3, info->width / 2,
                        info->height / 2),
                  QRect(0, 1, info->width - 1, info->height - 2),
                  QRect(info->width - 17, info->height - 9, 17, 9), QRect(7, 0, 1, 1)}) {
                const QImage part = decodeJpegRegion(bytes, 1, region).value();
                const QImage ref = whole.copy(region).convertToFormat(QImage::Format_RGB888);
                QCOMPARE(part.size(), ref.size());
                int maxDiff = 0, firstX = -1, firstY = -1, count = 0;
                for (int y = 0; y < ref.height(); ++y)
                    for (int x = 0; x < ref.width() * 3; ++x) {
                        const int d = std::abs(int(part.constScanLine(y)[x])
                                               - int(ref.constScanLine(y)[x]));
                        if (d && firstX < 0) {
                            firstX = x / 3;
                            firstY = y;
                        }
                        count += d ? 1 : 0;
                        maxDiff = std::max(maxDiff, d);
                    }
                QVERIFY2(maxDiff == 0,
                         qPrintable(QStringLiteral("%1 (%2 × %3, region %4,%5 %6×%7): %8 values "
                                                   "differ, max %9, first at (%10, %11)")
                                        .arg(s.path)
                                        .arg(info->width)
                                        .arg(info->height)
                                        .arg(region.x())
                                        .arg(region.y())
                                        .arg(region.width())
                                        .arg(region.height())
                                        .arg(count)
                                        .arg(maxDiff)
                                        .arg(firstX)
                                        .arg(firstY)));
            }
        }
    }

    void fusedPathIsExact()
    {
        BatchLoaderOptions exact;
        exact.batchSize = 4;
        exact.workers = 2;
        exact.seed = 11;
        exact.fusedPath = false;
        BatchLoaderOptions fused = exact;
        fused.fusedPath = true;
        fused.fastDecode = false;
        BatchLoader a(m_samples, compile(kTrain), exact);
        BatchLoader b(m_samples, compile(kTrain), fused);
        QVERIFY(!a.usesFusedPath());
        QVERIFY(b.usesFusedPath());
        const Epoch ea = runEpoch(a, 0);
        const Epoch eb = runEpoch(b, 0);
        QCOMPARE(ea.order, eb.order);
        QCOMPARE(ea.data.size(), size_t(6)); // 21 samples in batches of 4
        QCOMPARE(ea.data, eb.data);
        QVERIFY(a.failures().isEmpty());
        QVERIFY(b.failures().isEmpty());
    }

    void reducedScaleDecodingStaysClose()
    {
        // Big crops of the 1600 × 1200 images are decoded at 1/2 or 1/4 scale: close, not equal.
        const char *big = "T.Compose([T.RandomResizedCrop(64, scale=(0.6, 1.0)), T.ToTensor()])";
        BatchLoaderOptions options;
        options.batchSize = 21;
        options.workers = 1;
        options.shuffle = false;
        options.fusedPath = false;
        BatchLoader exact(m_samples, compile(big), options);
        options.fusedPath = true;
        options.fastDecode = true;
        BatchLoader fast(m_samples, compile(big), options);
        const Epoch a = runEpoch(exact, 0);
        const Epoch b = runEpoch(fast, 0);
        QCOMPARE(a.data.size(), b.data.size());
        double sum = 0.0, maxDiff = 0.0;
        size_t differing = 0;
        for (size_t i = 0; i < a.data[0].size(); ++i) {
            const double d = std::abs(double(a.data[0][i]) - double(b.data[0][i]));
            sum += d;
            maxDiff = std::max(maxDiff, d);
            differing += d > 0 ? 1 : 0;
        }
        const double meanDiff = sum / double(a.data[0].size());
        qInfo("reduced-scale decoding: mean |diff| %.4f, max %.4f, %zu values differ", meanDiff,
              maxDiff, differing);
        QVERIFY2(differing > 0, "no image took the reduced-scale path");
        QVERIFY2(meanDiff < 0.02, "reduced-scale decoding changed the images too much");
    }

    void epochsAreSeededPermutations()
    {
        BatchLoaderOptions options;
        options.batchSize = 5;
        options.workers = 2;
        options.seed = 3;
        BatchLoader loader(m_samples, compile(kTrain), options);
        QCOMPARE(loader.batchesPerEpoch(), 5);
        const Epoch e0 = runEpoch(loader, 0);
        const Epoch e0again = runEpoch(loader, 0);
        const Epoch e1 = runEpoch(loader, 1);
        QCOMPARE(std::set<int>(e0.order.begin(), e0.order.end()).size(), m_samples.size());
        QCOMPARE(e0.order.size(), m_samples.size());
        QCOMPARE(e0.order, e0again.order);
        QCOMPARE(e0.data, e0again.data); // the same draws, whatever the thread timing
        QVERIFY(e0.order != e1.order);
        for (size_t i = 0; i < e0.order.size(); ++i)
            QCOMPARE(e0.labels[i], int64_t(m_samples[size_t(e0.order[i])].label));

        options.shuffle = false;
        options.dropLast = true;
        BatchLoader ordered(m_samples, compile(kTrain), options);
        const Epoch plain = runEpoch(ordered, 0);
        QCOMPARE(plain.data.size(), size_t(4)); // 21 / 5, the last one dropped
        for (size_t i = 0; i < plain.order.size(); ++i)
            QCOMPARE(plain.order[i], int(i));
    }

    void brokenImagesAreSkippedAndListed()
    {
        std::vector<LoaderSample> samples(m_samples.begin(), m_samples.begin() + 6);
        const QString truncated = m_dir.filePath(QStringLiteral("truncated.jpg"));
        QFile source(m_samples[0].path);
        QVERIFY(source.open(QIODevice::ReadOnly));
        QVERIFY(test::writeFile(truncated, source.readAll().left(3000)));
        const QString text = m_dir.filePath(QStringLiteral("notes.jpg"));
        QVERIFY(test::writeFile(text, "this is not an image\n"));
        samples.insert(samples.begin() + 2, {truncated, 0});
        samples.push_back({text, 1});
        samples.push_back({m_dir.filePath(QStringLiteral("missing.jpg")), 1});
        BatchLoaderOptions options;
        options.batchSize = 4;
        options.workers = 2;
        options.shuffle = false;
        BatchLoader loader(samples, compile(kTrain), options);
        const Epoch e = runEpoch(loader, 0);
        QCOMPARE(e.order.size(), size_t(6));
        const QList<LoaderFailure> failures = loader.failures();
        QCOMPARE(failures.size(), 3);
        QStringList paths;
        for (const LoaderFailure &f : failures) {
            paths << f.path;
            QVERIFY(!f.message.isEmpty());
        }
        QVERIFY(paths.contains(truncated));
        QVERIFY(paths.contains(text));
        for (const LoaderFailure &f : failures)
            if (f.path == truncated)
                QVERIFY2(f.message.contains(QStringLiteral("truncated")), qPrintable(f.message));
    }

    void unequalShapesAreReported()
    {
        // Resize(50) keeps the aspect ratio: 6 of these 21 images give another shape than the
        // other 15. That is not one odd file to skip but a pipeline that does not make images
        // the same size (torchvision's collate would fail on the first batch): no batch is made,
        // and the loader says why, with the shapes, example files and the fix.
        BatchLoaderOptions options;
        options.batchSize = 21;
        options.workers = 1;
        options.shuffle = false;
        BatchLoader loader(m_samples, compile("T.Compose([T.Resize(50), T.ToTensor()])"), options);
        const Status status = loader.status();
        QVERIFY(!status.ok());
        const QString message = status.errorMessage();
        for (const char *part :
             {"different sizes", "[3, 50, 66] for 15", "[3, 66, 50] for 3", "[3, 104, 50] for 3",
              "of the 21 images tried", "same size", "Resize((50, 66))", "CenterCrop(50)"})
            QVERIFY2(message.contains(QString::fromUtf8(part)), qPrintable(message));
        QVERIFY2(message.contains(QStringLiteral("(e.g. “cat/")), qPrintable(message));
        const Epoch e = runEpoch(loader, 0);
        QVERIFY(e.order.empty());
        QVERIFY(loader.failures().isEmpty());

        // A batch of one stacks anything, as in torch: every image is used.
        options.batchSize = 1;
        BatchLoader single(m_samples, compile("T.Compose([T.Resize(50), T.ToTensor()])"), options);
        QVERIFY(single.status().ok());
        QCOMPARE(runEpoch(single, 0).order.size(), m_samples.size());
        QVERIFY(single.failures().isEmpty());
    }

    void oddSizedImageIsSkippedNotTheBatch()
    {
        // One image of another size among same-sized ones comes first: the batches keep the
        // shape most images give, the odd one is skipped and listed with the fix.
        QTemporaryDir dir;
        std::vector<LoaderSample> samples;
        QImage odd(90, 30, QImage::Format_RGB888);
        odd.fill(Qt::red);
        QVERIFY(odd.save(dir.filePath(QStringLiteral("000-odd.png"))));
        samples.push_back({dir.filePath(QStringLiteral("000-odd.png")), 0});
        for (int i = 0; i < 11; ++i) {
            QImage image(64, 48, QImage::Format_RGB888);
            image.fill(QColor(i * 20, 100, 50));
            const QString path
                = dir.filePath(QStringLiteral("%1.png").arg(i + 1, 3, 10, QLatin1Char('0')));
            QVERIFY(image.save(path));
            samples.push_back({path, i % 2});
        }
        BatchLoaderOptions options;
        options.batchSize = 4;
        options.workers = 2;
        options.shuffle = false;
        BatchLoader loader(samples, compile("[T.ToTensor()]"), options);
        QVERIFY2(loader.status().ok(), qPrintable(loader.status().errorMessage()));
        const Epoch e = runEpoch(loader, 0);
        QCOMPARE(e.order.size(), size_t(11));
        QCOMPARE(e.data[0].size(), size_t(3 * 3 * 48 * 64)); // the odd one left out of batch 0
        QCOMPARE(loader.failures().size(), 1);
        const LoaderFailure failure = loader.failures().front();
        QCOMPARE(failure.path, samples[0].path);
        QVERIFY2(failure.message.contains(QStringLiteral(
                     "gives a tensor of [3, 30, 90] but the batch holds [3, 48, 64]")),
                 qPrintable(failure.message));
        QVERIFY2(failure.message.contains(QStringLiteral("same size")),
                 qPrintable(failure.message));
        QVERIFY2(failure.message.contains(QStringLiteral("add Resize((48, 64))")),
                 qPrintable(failure.message));
    }

    void giantImageIsSkippedBeforeItsTensorIsMade()
    {
        // A 12000 × 12000 gray PNG (PIL loads it, with a DecompressionBombWarning) first among
        // normal images, and no Resize: its tensor would be 1.6 GiB, a batch of it 64 times
        // that. The loader's memory bound refuses the tensor before making it: the image is
        // skipped, named, with what to do; the other images are batched.
        QTemporaryDir dir;
        const QString giant = dir.filePath(QStringLiteral("000-giant.png"));
        {
            QImage zeros(12000, 12000, QImage::Format_Grayscale8);
            zeros.fill(0);
            QVERIFY(zeros.save(giant));
        }
        QVERIFY(QFileInfo(giant).size() < 2 << 20);
        std::vector<LoaderSample> samples{{giant, 1}};
        for (int i = 0; i < 11; ++i) {
            QImage image(64, 48, QImage::Format_RGB888);
            image.fill(QColor(i * 20, 100, 50));
            const QString path
                = dir.filePath(QStringLiteral("%1.png").arg(i + 1, 3, 10, QLatin1Char('0')));
            QVERIFY(image.save(path));
            samples.push_back({path, i % 2});
        }
        BatchLoaderOptions options;
        options.batchSize = 64;
        options.workers = 2;
        options.shuffle = false;
        options.maxBytes = qint64(1) << 30; // tensors up to 256 MiB per worker, batches 512 MiB
        rusage before{};
        getrusage(RUSAGE_SELF, &before);
        BatchLoader loader(samples,
                           compile("[T.ToTensor(), T.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])]"),
                           options);
        QVERIFY2(loader.status().ok(), qPrintable(loader.status().errorMessage()));
        const Epoch e = runEpoch(loader, 0);
        rusage after{};
        getrusage(RUSAGE_SELF, &after);
        QCOMPARE(e.order.size(), size_t(11));
        QCOMPARE(e.data.size(), size_t(1));
        QCOMPARE(e.data[0].size(), size_t(11 * 3 * 48 * 64));
        QCOMPARE(loader.failures().size(), 1);
        const LoaderFailure failure = loader.failures().front();
        QCOMPARE(failure.path, giant);
        for (const char *part : {"000-giant.png",
                                 "Step 1, ToTensor: its output, tensor float32 [3, 12000, 12000], "
                                 "would take 1.6 GiB, more than the 256 MiB",
                                 "It is skipped: downscale it, or add a Resize"})
            QVERIFY2(failure.message.contains(QString::fromUtf8(part)),
                     qPrintable(failure.message));
        // The decoded image (432 MB as RGB) was made, its 1.6 GiB tensor was not.
        QVERIFY2((after.ru_maxrss - before.ru_maxrss) < 1200 * 1024,
                 qPrintable(QStringLiteral("peak grew by %1 MiB")
                                .arg((after.ru_maxrss - before.ru_maxrss) / 1024)));
    }

    void batchBeyondTheMemoryBoundIsRefused()
    {
        // Each tensor fits, 64 of them do not: no batch is made, and the loader says why.
        BatchLoaderOptions options;
        options.batchSize = 64;
        options.workers = 1;
        options.maxBytes = qint64(1) << 30;
        BatchLoader loader(m_samples, compile("[T.Resize((1000, 1000)), T.ToTensor()]"), options);
        QVERIFY(!loader.status().ok());
        QCOMPARE(loader.status().errorMessage(),
                 QStringLiteral("the transforms give tensors of [3, 1000, 1000]: a batch of 64 of "
                                "them would take 732.4 MiB, more than the 512 MiB one batch may "
                                "use here. Add a Resize to the transforms (or use a smaller "
                                "batch size)"));
        QVERIFY(runEpoch(loader, 0).order.empty());
    }

    void bombBeyondPilsLimitFailsOnTheFusedPath()
    {
        // A valid JPEG beyond twice PIL's MAX_IMAGE_PIXELS: torchvision cannot open it, so
        // neither does the fused path (which could decode just a crop of it).
        QTemporaryDir dir;
        const QString bomb = dir.filePath(QStringLiteral("bomb.jpg"));
        const test::ProcessResult r = test::runProcess(
            test::oraclePython(),
            {QStringLiteral("-c"),
             QStringLiteral("import sys; from PIL import Image; "
                            "Image.new('L', (14351, 12471), 128).save(sys.argv[1], quality=50)"),
             bomb});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        std::vector<LoaderSample> samples(m_samples.begin(), m_samples.begin() + 3);
        samples.push_back({bomb, 0});
        BatchLoaderOptions options;
        options.batchSize = 4;
        options.workers = 1;
        options.shuffle = false;
        BatchLoader loader(samples, compile(kTrain), options);
        QVERIFY(loader.usesFusedPath());
        const Epoch e = runEpoch(loader, 0);
        QCOMPARE(e.order.size(), size_t(3));
        QCOMPARE(loader.failures().size(), 1);
        QCOMPARE(loader.failures().front().path, bomb);
        QVERIFY2(loader.failures().front().message.contains(QStringLiteral("decompression-bomb")),
                 qPrintable(loader.failures().front().message));
    }

    void undecodableNamesLoadByTheirBytes()
    {
        // Names that are not valid UTF-8 (legal on Linux, and torchvision loads them): the scan
        // keeps their bytes, and both decoding paths open the files by them.
        QTemporaryDir tmp;
        const auto cleanup = qScopeGuard([&] { test::removeTree(tmp.path()); });
        std::vector<LoaderSample> plain(m_samples.begin(), m_samples.begin() + 6);
        for (size_t i = 0; i < plain.size(); ++i) {
            QFile source(plain[i].path);
            QVERIFY(source.open(QIODevice::ReadOnly));
            // "c\xff/0\xfe.jpg": sorts like the plain list (one per name, in order).
            const std::string name = std::string(plain[i].label == 0 ? "c\xff" : "d\x80") + "/"
                + std::to_string(i) + "\xfe.jpg";
            QVERIFY(test::writeFile(tmp.path() + u'/' + decodeFileName(name), source.readAll()));
        }
        const Result<ImageFolderIndex> index = scanImageFolder(tmp.path());
        QVERIFY2(index.ok() && index->acceptedByTorchvision(), qPrintable(index.errorMessage()));
        QCOMPARE(index->sampleCount(), int64_t(plain.size()));
        std::vector<LoaderSample> escaped, same;
        for (const Sample &sample : index->samples) {
            escaped.push_back({index->absolutePath(sample), sample.classIndex});
            const std::string_view path = sample.relativePath();
            const size_t i = size_t(path[path.find('/') + 1] - '0');
            same.push_back(plain[i]);
            QCOMPARE(same.back().label == 0 ? 0 : 1, sample.classIndex);
        }
        for (const bool fused : {false, true}) {
            BatchLoaderOptions options;
            options.batchSize = 3;
            options.workers = 2;
            options.shuffle = false;
            options.fusedPath = fused;
            options.fastDecode = false;
            BatchLoader ours(escaped, compile(kTrain), options);
            BatchLoader reference(same, compile(kTrain), options);
            const Epoch a = runEpoch(ours, 0);
            QVERIFY2(ours.failures().isEmpty(), qPrintable(ours.failures().value(0).message));
            QCOMPARE(a.order.size(), escaped.size());
            QCOMPARE(a.data, runEpoch(reference, 0).data);
        }
    }

    void cancelStops()
    {
        std::vector<LoaderSample> many;
        for (int i = 0; i < 40; ++i)
            many.insert(many.end(), m_samples.begin(), m_samples.end());
        BatchLoaderOptions options;
        options.batchSize = 8;
        options.workers = 2;
        BatchLoader loader(many, compile(kTrain), options);
        loader.startEpoch(0);
        QVERIFY(loader.next().has_value());
        loader.cancel();
        QVERIFY(!loader.next().has_value());
        // A new epoch runs again after a cancel.
        loader.startEpoch(1);
        QVERIFY(loader.next().has_value());
    }
};

QTEST_GUILESS_MAIN(TstBatchLoader)
#include "tst_batchloader.moc"
