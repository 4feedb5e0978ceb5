// The transform engine against torchvision 0.14 + PIL (the oracle) on real image files:
// deterministic transforms pixel for pixel, random transforms after the same torch.manual_seed,
// parameter ranges, seed determinism, the advice, and Python source in and out.
#include "testutil.h"

#include "image/imageprobe.h"
#include "transforms/torchrng.h"
#include "transforms/transformadvice.h"
#include "transforms/transforms.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstring>
#include <limits>

#include <sys/resource.h>

using namespace ifs;

namespace {

struct Case
{
    const char *name;
    const char *image; ///< one of the oracle's test images
    const char *pipeline;
    int seed; ///< -1: no manual_seed (deterministic pipelines)
    int tolerance; ///< allowed difference in 8-bit steps (0: exact)
};

// clang-format off
const Case kCases[] = {
    // Resize: PIL's antialiased resampling, every filter, both directions, max_size, (h, w).
    {"resize 224 bilinear", "photo.jpg", "T.Resize(224)", -1, 0},
    {"resize (h,w)", "photo.jpg", "T.Resize((100, 333))", -1, 0},
    {"resize upscale", "portrait.png", "T.Resize(600)", -1, 0},
    {"resize nearest", "photo.jpg", "T.Resize(211, interpolation=T.InterpolationMode.NEAREST)", -1, 0},
    {"resize nearest up", "tiny.png", "T.Resize(97, interpolation=T.InterpolationMode.NEAREST)", -1, 0},
    {"resize bicubic", "photo.jpg", "T.Resize(123, interpolation=T.InterpolationMode.BICUBIC)", -1, 0},
    {"resize bicubic up", "gray.png", "T.Resize(150, interpolation=T.InterpolationMode.BICUBIC)", -1, 0},
    {"resize box", "photo.jpg", "T.Resize(64, interpolation=T.InterpolationMode.BOX)", -1, 0},
    {"resize hamming", "portrait.png", "T.Resize(70, interpolation=T.InterpolationMode.HAMMING)", -1, 0},
    {"resize lanczos", "photo.jpg", "T.Resize(99, interpolation=T.InterpolationMode.LANCZOS)", -1, 0},
    {"resize max_size", "photo.jpg", "T.Resize(150, max_size=180)", -1, 0},
    {"resize same size", "tiny.png", "T.Resize((29, 31))", -1, 0},
    // Crops and pads: exact.
    {"center crop", "photo.jpg", "T.CenterCrop(224)", -1, 0},
    {"center crop odd", "portrait.png", "T.CenterCrop((100, 77))", -1, 0},
    {"center crop pads", "photo.jpg", "T.CenterCrop(400)", -1, 0},
    {"center crop pads both", "tiny.png", "T.CenterCrop((40, 36))", -1, 0},
    {"pad", "tiny.png", "T.Pad(5)", -1, 0},
    {"pad fill", "tiny.png", "T.Pad((3, 7), fill=(255, 0, 128))", -1, 0},
    {"pad reflect", "tiny.png", "T.Pad((1, 2, 3, 4), padding_mode='reflect')", -1, 0},
    {"pad edge", "gray.png", "T.Pad(9, padding_mode='edge')", -1, 0},
    {"pad symmetric", "tiny.png", "T.Pad((40, 3), padding_mode='symmetric')", -1, 0},
    {"grayscale", "photo.jpg", "T.Grayscale()", -1, 0},
    {"grayscale 3", "portrait.png", "T.Grayscale(num_output_channels=3)", -1, 0},
    // Tensors: ToTensor, Normalize and what torchvision does to tensors.
    {"to tensor", "portrait.png", "T.ToTensor()", -1, 0},
    {"to tensor rgba", "tiny.png", "T.ToTensor()", -1, 0},
    {"to tensor gray", "gray.png", "T.Compose([T.Grayscale(), T.ToTensor()])", -1, 0},
    {"imagenet val", "photo.jpg",
     "T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), "
     "T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])", -1, 0},
    {"normalize one value", "gray.png",
     "[T.ToTensor(), T.Normalize((0.2860,), (0.3530,))]", -1, 0},
    {"tensor pad crop flip gray", "tiny.png",
     "T.Compose([T.ToTensor(), T.Pad(3, padding_mode='reflect'), T.CenterCrop((30, 35)), "
     "T.RandomHorizontalFlip(p=1.0), T.Grayscale(num_output_channels=3)])", -1, 0},
    {"tensor random crop", "portrait.png",
     "T.Compose([T.ToTensor(), T.RandomCrop(300, padding=4, padding_mode='symmetric')])", 5, 0},
    // Random transforms, after the same seed.
    {"rrc seed 0", "photo.jpg", "T.RandomResizedCrop(224)", 0, 0},
    {"rrc seed 1", "photo.jpg", "T.RandomResizedCrop(224)", 1, 0},
    {"rrc seed 42", "portrait.png", "T.RandomResizedCrop(224)", 42, 0},
    {"rrc seed 7 small", "gray.png", "T.RandomResizedCrop(32, scale=(0.3, 0.6))", 7, 0},
    {"rrc fallback", "photo.jpg", "T.RandomResizedCrop(50, scale=(0.99, 1.0), ratio=(3.0, 4.0))", 3, 0},
    {"rrc bicubic", "photo.jpg",
     "T.RandomResizedCrop((120, 90), interpolation=T.InterpolationMode.BICUBIC)", 11, 0},
    {"random crop", "photo.jpg", "T.RandomCrop(300)", 5, 0},
    {"random crop pad", "portrait.png", "T.RandomCrop((350, 260), padding=10, pad_if_needed=True)", 6, 0},
    {"random crop reflect", "tiny.png",
     "T.RandomCrop(40, pad_if_needed=True, padding_mode='reflect')", 8, 0},
    {"hflip", "photo.jpg", "T.Compose([T.RandomHorizontalFlip(), T.RandomVerticalFlip()])", 2, 0},
    {"hflip 2", "photo.jpg", "T.Compose([T.RandomHorizontalFlip(), T.RandomVerticalFlip()])", 3, 0},
    {"rotation", "photo.jpg", "T.RandomRotation(30)", 4, 0},
    {"rotation expand fill", "portrait.png",
     "T.RandomRotation((10, 80), expand=True, fill=(255, 0, 0))", 9, 0},
    {"rotation bilinear", "photo.jpg",
     "T.RandomRotation(45, interpolation=T.InterpolationMode.BILINEAR)", 12, 1},
    {"rotation center", "gray.png", "T.RandomRotation(90, center=(10, 5), fill=128)", 13, 0},
    {"affine", "photo.jpg",
     "T.RandomAffine(20, translate=(0.1, 0.2), scale=(0.8, 1.2), shear=10)", 14, 0},
    {"affine shear4 bilinear", "portrait.png",
     "T.RandomAffine(0, shear=(-5, 5, -10, 10), interpolation=T.InterpolationMode.BILINEAR, "
     "fill=50)", 15, 1},
    {"color jitter", "photo.jpg", "T.ColorJitter(0.4, 0.4, 0.4, 0.1)", 16, 0},
    {"color jitter 2", "portrait.png", "T.ColorJitter(brightness=(0.5, 1.5), hue=0.5)", 17, 0},
    {"color jitter gray", "gray.png", "T.ColorJitter(0.3, 0.3, 0.3, 0.2)", 18, 0},
    {"random grayscale", "photo.jpg",
     "T.Compose([T.RandomGrayscale(p=0.5), T.RandomGrayscale(p=0.5)])", 19, 0},
    {"gaussian blur", "photo.jpg", "T.GaussianBlur(5, sigma=(0.1, 2.0))", 20, 1},
    {"gaussian blur rect", "tiny.png", "T.GaussianBlur((3, 7), sigma=1.5)", 21, 1},
    {"random erasing", "portrait.png",
     "T.Compose([T.ToTensor(), T.RandomErasing(p=1.0, value='random')])", 22, 0},
    {"random erasing value", "photo.jpg",
     "T.Compose([T.ToTensor(), T.RandomErasing(p=1.0, scale=(0.1, 0.2), value=(0.5, 0.2, 0.1))])",
     23, 0},
    {"train recipe", "photo.jpg",
     "T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), "
     "T.ColorJitter(0.2, 0.2, 0.2), T.ToTensor(), "
     "T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), T.RandomErasing()])", 24, 0},
    {"small recipe", "gray.png",
     "T.Compose([T.RandomCrop(48, padding=6), T.RandomHorizontalFlip(), T.ToTensor(), "
     "T.Normalize((0.5,), (0.5,))])", 25, 0},
    // Containers: RandomApply draws from torch; RandomChoice and RandomOrder from Python's
    // random, which the oracle seeds with the same seed.
    {"random apply", "photo.jpg",
     "T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4), T.RandomGrayscale(p=0.5)], p=0.5)", 30, 0},
    {"random apply 2", "photo.jpg",
     "T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4), T.RandomGrayscale(p=0.5)], p=0.5)", 31, 0},
    {"random apply compose", "portrait.png",
     "T.Compose([T.RandomApply([T.Compose([T.RandomRotation(20), T.CenterCrop(200)])], p=0.7), "
     "T.ToTensor()])", 32, 0},
    {"random choice", "photo.jpg",
     "T.RandomChoice([T.RandomHorizontalFlip(p=1.0), T.RandomVerticalFlip(p=1.0), "
     "T.ColorJitter(0.5)])", 33, 0},
    {"random choice weights", "gray.png",
     "T.RandomChoice([T.RandomCrop(20), T.CenterCrop(30)], p=[0.3, 0.7])", 34, 0},
    {"random order", "photo.jpg",
     "T.RandomOrder([T.ColorJitter(0.3), T.RandomGrayscale(p=1.0), T.CenterCrop(200), "
     "T.RandomRotation(10)])", 35, 0},
    // ImageOps and ImageEnhance.Sharpness.
    {"invert", "photo.jpg", "T.RandomInvert(p=1.0)", 36, 0},
    {"posterize", "portrait.png", "T.RandomPosterize(3, p=1.0)", 37, 0},
    {"solarize", "gray.png", "T.RandomSolarize(100, p=1.0)", 38, 0},
    {"sharpness up", "photo.jpg", "T.RandomAdjustSharpness(2.5, p=1.0)", 39, 0},
    {"sharpness down", "tiny.png", "T.RandomAdjustSharpness(0.2, p=1.0)", 40, 0},
    {"autocontrast", "portrait.png", "T.RandomAutocontrast(p=1.0)", 41, 0},
    {"autocontrast gray", "gray.png", "T.RandomAutocontrast(p=1.0)", 42, 0},
    {"equalize", "photo.jpg", "T.RandomEqualize(p=1.0)", 43, 0},
    {"equalize tiny", "tiny.png", "T.RandomEqualize(p=1.0)", 44, 0},
    {"coin ops", "photo.jpg",
     "T.Compose([T.RandomInvert(), T.RandomPosterize(4), T.RandomSolarize(128), "
     "T.RandomAdjustSharpness(2), T.RandomAutocontrast(), T.RandomEqualize()])", 45, 0},
    {"perspective", "photo.jpg", "T.RandomPerspective(p=1.0)", 46, 0},
    {"perspective nearest fill", "portrait.png",
     "T.RandomPerspective(0.7, p=1.0, interpolation=T.InterpolationMode.NEAREST, "
     "fill=(10, 200, 30))", 47, 0},
    {"perspective bicubic gray", "gray.png",
     "T.RandomPerspective(0.3, p=1.0, interpolation=T.InterpolationMode.BICUBIC)", 48, 0},
    // Augmentation policies.
    {"autoaugment", "photo.jpg", "T.AutoAugment()", 50, 0},
    {"autoaugment 2", "portrait.png", "T.AutoAugment()", 51, 0},
    {"autoaugment cifar10", "tiny.png", "T.AutoAugment(T.AutoAugmentPolicy.CIFAR10)", 52, 0},
    {"autoaugment svhn", "photo.jpg",
     "T.AutoAugment(policy=T.AutoAugmentPolicy.SVHN, fill=[128, 0, 255])", 53, 0},
    {"randaugment", "photo.jpg", "T.RandAugment()", 54, 0},
    {"randaugment 4 ops", "portrait.png", "T.RandAugment(num_ops=4, magnitude=20)", 55, 0},
    {"randaugment bilinear", "gray.png",
     "T.RandAugment(magnitude=5, num_magnitude_bins=10, "
     "interpolation=T.InterpolationMode.BILINEAR)", 56, 1},
    {"trivialaugment", "photo.jpg", "T.TrivialAugmentWide()", 57, 0},
    {"trivialaugment 2", "photo.jpg", "T.TrivialAugmentWide()", 58, 0},
    {"trivialaugment 3", "portrait.png", "T.TrivialAugmentWide()", 59, 0},
    {"trivialaugment 4", "tiny.png", "T.TrivialAugmentWide(num_magnitude_bins=10)", 60, 0},
    {"trivialaugment recipe", "photo.jpg",
     "T.Compose([T.RandomResizedCrop(176), T.RandomHorizontalFlip(), T.TrivialAugmentWide(), "
     "T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), "
     "T.RandomErasing(p=0.1)])", 61, 0},
    // Tensors back to PIL images; dtypes.
    {"to pil image", "portrait.png",
     "T.Compose([T.ToTensor(), T.ToPILImage(), T.Resize(50)])", -1, 0},
    {"convert dtype", "gray.png", "T.Compose([T.ToTensor(), T.ConvertImageDtype(torch.float)])",
     -1, 0},
    // What torchvision refuses, we refuse.
    {"normalize on PIL fails", "photo.jpg", "T.Normalize((0.5,), (0.5,))", -1, 0},
    {"crop too large fails", "tiny.png", "T.RandomCrop(64)", 1, 0},
    {"normalize channels fail", "photo.jpg",
     "T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5), (0.5, 0.5))])", -1, 0},
};
// clang-format on

QByteArray readAll(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

} // namespace

class TstTransforms : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QJsonArray m_results;

    QString image(const char *name) const { return m_dir.filePath(QString::fromUtf8(name)); }

    QJsonObject runOracle(const QString &pipeline, const QString &imagePath, int seed,
                          QByteArray *bytes)
    {
        QJsonObject c{{QStringLiteral("image"), imagePath}, {QStringLiteral("pipeline"), pipeline}};
        if (seed >= 0)
            c[QStringLiteral("seed")] = seed;
        const QString request = m_dir.filePath(QStringLiteral("single.json"));
        const QString outDir = m_dir.filePath(QStringLiteral("single"));
        QDir().mkpath(outDir);
        test::writeFile(
            request, QJsonDocument(QJsonObject{{QStringLiteral("cases"), QJsonArray{c}}}).toJson());
        const test::ProcessResult r = test::runOracle(QStringLiteral("transforms_oracle.py"),
                                                      {QStringLiteral("run"), request, outDir});
        if (r.exitCode != 0)
            qWarning() << r.err;
        const QJsonObject result
            = QJsonDocument::fromJson(r.out)[QStringLiteral("results")][0].toObject();
        *bytes = readAll(outDir + QStringLiteral("/0.bin"));
        return result;
    }

    /// Compares our run with the oracle's output bytes; returns a message on mismatch.
    static QString compare(const TransformData &ours, const QJsonObject &theirs,
                           const QByteArray &bytes, int tolerance)
    {
        const QJsonArray shape = theirs[QStringLiteral("shape")].toArray();
        if (theirs[QStringLiteral("kind")].toString() == u"tensor") {
            if (!ours.isTensor())
                return QStringLiteral("torchvision made a tensor, we made %1").arg(ours.describe());
            const ImageTensor &t = ours.tensor;
            if (shape != QJsonArray{t.channels, t.height, t.width})
                return QStringLiteral("shape: torchvision %1, ours %2")
                    .arg(QString::fromUtf8(QJsonDocument(shape).toJson(QJsonDocument::Compact)),
                         ours.describe());
            if (bytes.size() != qsizetype(t.data.size() * sizeof(float)))
                return QStringLiteral("byte count differs");
            const float *ref = reinterpret_cast<const float *>(bytes.constData());
            double maxDiff = 0.0;
            qsizetype differing = 0, first = -1;
            for (size_t i = 0; i < t.data.size(); ++i) {
                const double d = std::abs(double(ref[i]) - double(t.data[i]));
                if (d > 0) {
                    ++differing;
                    if (first < 0)
                        first = qsizetype(i);
                }
                maxDiff = std::max(maxDiff, d);
            }
            // A tolerance in 8-bit steps, scaled by the largest 1/std a Normalize may apply.
            const double allowed = tolerance * (1.0 / 255.0) * 4.5 + 1e-7;
            if ((tolerance == 0 && differing) || maxDiff > allowed)
                return QStringLiteral("%1 of %2 values differ, max %3, first at %4 (ours %5, "
                                      "torchvision %6)")
                    .arg(differing)
                    .arg(t.data.size())
                    .arg(maxDiff)
                    .arg(first)
                    .arg(double(t.data[size_t(first)]))
                    .arg(double(ref[first]));
            return {};
        }
        if (ours.isTensor())
            return QStringLiteral("torchvision made a PIL image, we made a tensor");
        const QImage &img = ours.image;
        const int c = ours.channels();
        if (shape != QJsonArray{img.height(), img.width(), c})
            return QStringLiteral("shape: torchvision %1, ours %2")
                .arg(QString::fromUtf8(QJsonDocument(shape).toJson(QJsonDocument::Compact)),
                     ours.describe());
        int maxDiff = 0;
        qsizetype differing = 0;
        QString first;
        for (int y = 0; y < img.height(); ++y) {
            const uchar *row = img.constScanLine(y);
            const uchar *ref = reinterpret_cast<const uchar *>(bytes.constData())
                + qsizetype(y) * img.width() * c;
            for (int x = 0; x < img.width() * c; ++x) {
                const int d = std::abs(int(row[x]) - int(ref[x]));
                if (d) {
                    if (first.isEmpty())
                        first = QStringLiteral("(%1, %2) channel %3: ours %4, torchvision %5")
                                    .arg(x / c)
                                    .arg(y)
                                    .arg(x % c)
                                    .arg(row[x])
                                    .arg(ref[x]);
                    ++differing;
                }
                maxDiff = std::max(maxDiff, d);
            }
        }
        if (maxDiff > tolerance)
            return QStringLiteral("%1 of %2 values differ, max %3, first at %4")
                .arg(differing)
                .arg(qsizetype(img.width()) * img.height() * c)
                .arg(maxDiff)
                .arg(first);
        return {};
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        const test::ProcessResult made = test::runOracle(QStringLiteral("transforms_oracle.py"),
                                                         {QStringLiteral("images"), m_dir.path()});
        QVERIFY2(made.exitCode == 0, made.err.constData());

        QJsonArray cases;
        for (const Case &c : kCases) {
            QJsonObject o{{QStringLiteral("image"), image(c.image)},
                          {QStringLiteral("pipeline"), QString::fromUtf8(c.pipeline)}};
            if (c.seed >= 0)
                o[QStringLiteral("seed")] = c.seed;
            cases.append(o);
        }
        const QString request = m_dir.filePath(QStringLiteral("request.json"));
        QVERIFY(test::writeFile(
            request, QJsonDocument(QJsonObject{{QStringLiteral("cases"), cases}}).toJson()));
        QDir().mkpath(m_dir.filePath(QStringLiteral("out")));
        const test::ProcessResult r = test::runOracle(
            QStringLiteral("transforms_oracle.py"),
            {QStringLiteral("run"), request, m_dir.filePath(QStringLiteral("out"))}, 300000);
        QVERIFY2(r.exitCode == 0, r.err.constData());
        m_results = QJsonDocument::fromJson(r.out)[QStringLiteral("results")].toArray();
        QCOMPARE(m_results.size(), qsizetype(std::size(kCases)));
    }

    void matchesTorchvision_data()
    {
        QTest::addColumn<int>("index");
        for (int i = 0; i < int(std::size(kCases)); ++i)
            QTest::newRow(kCases[i].name) << i;
    }

    void matchesTorchvision()
    {
        QFETCH(int, index);
        const Case &c = kCases[index];
        const QJsonObject theirs = m_results[index].toObject();

        Result<TransformPipeline> pipeline = parseTransforms(QString::fromUtf8(c.pipeline));
        QVERIFY2(pipeline.ok(), qPrintable(pipeline.errorMessage()));
        Result<CompiledPipeline> compiled = CompiledPipeline::compile(pipeline.value());
        Result<QImage> input = loadTransformInput(image(c.image));
        QVERIFY2(input.ok(), qPrintable(input.errorMessage()));
        TorchGenerator rng(c.seed >= 0 ? uint64_t(c.seed) : TorchGenerator::kDefaultSeed);
        Result<TransformRun> run
            = compiled ? compiled->run(input.value(), rng) : Result<TransformRun>(compiled.error());

        if (!theirs[QStringLiteral("ok")].toBool()) {
            QVERIFY2(!run.ok(),
                     qPrintable(QStringLiteral("torchvision failed (%1) but we did not")
                                    .arg(theirs[QStringLiteral("error")].toString())));
            QVERIFY(!run.errorMessage().isEmpty());
            qInfo() << "both refuse; ours:" << run.errorMessage();
            return;
        }
        QVERIFY2(run.ok(), qPrintable(run.errorMessage()));
        const QByteArray bytes = readAll(m_dir.filePath(QStringLiteral("out/%1.bin").arg(index)));
        const QString mismatch = compare(run->output, theirs, bytes, c.tolerance);
        QVERIFY2(mismatch.isEmpty(), qPrintable(mismatch));
    }

    void seedReproducesRun()
    {
        const Result<TransformPipeline> pipeline = parseTransforms(QStringLiteral(
            "T.Compose([T.RandomResizedCrop(64), T.RandomHorizontalFlip(), T.ColorJitter(0.3), "
            "T.ToTensor()])"));
        QVERIFY(pipeline.ok());
        const Result<CompiledPipeline> compiled = CompiledPipeline::compile(pipeline.value());
        QVERIFY(compiled.ok());
        QVERIFY(compiled->isRandom());
        const QImage input = loadTransformInput(image("photo.jpg")).value();
        auto runWith = [&](uint64_t seed) {
            TorchGenerator rng(seed);
            return compiled->run(input, rng).value().output.tensor.data;
        };
        QCOMPARE(runWith(5), runWith(5));
        QVERIFY(runWith(5) != runWith(6));
    }

    void randomResizedCropStaysInRange()
    {
        // The crops drawn over many seeds respect scale and ratio (or are the central
        // fallback), cover the image, and the crop box maps back into the input.
        const Result<CompiledPipeline> compiled = CompiledPipeline::compile(
            parseTransforms(QStringLiteral("T.RandomResizedCrop(50, scale=(0.2, 0.7), "
                                           "ratio=(0.5, 2.0))"))
                .value());
        QVERIFY(compiled.ok());
        const QImage input = loadTransformInput(image("photo.jpg")).value();
        double minArea = 1, maxArea = 0;
        for (uint64_t seed = 0; seed < 300; ++seed) {
            TorchGenerator rng(seed);
            const Result<TransformRun> run = compiled->run(input, rng);
            QVERIFY(run.ok());
            QCOMPARE(run->output.size(), QSize(50, 50));
            const QRectF box = run->steps[0].regionInInput;
            QVERIFY2(QRectF(0, 0, 500, 375).contains(box), qPrintable(run->steps[0].summary));
            const double area = box.width() * box.height() / (500.0 * 375.0);
            const double ratio = box.width() / box.height();
            // Rounding w and h to whole pixels moves area and ratio a little.
            QVERIFY2(area > 0.2 - 0.01 && area < 0.7 + 0.01, qPrintable(run->steps[0].summary));
            QVERIFY2(ratio > 0.5 * 0.97 && ratio < 2.0 * 1.03, qPrintable(run->steps[0].summary));
            minArea = std::min(minArea, area);
            maxArea = std::max(maxArea, area);
        }
        QVERIFY2(minArea < 0.25 && maxArea > 0.65, "the draws do not cover the scale range");
    }

    void flipsAboutHalfTheTime()
    {
        const Result<CompiledPipeline> compiled = CompiledPipeline::compile(
            parseTransforms(QStringLiteral("T.RandomHorizontalFlip(p=0.3)")).value());
        const QImage input = loadTransformInput(image("tiny.png")).value();
        TorchGenerator rng(99);
        int flipped = 0;
        for (int i = 0; i < 2000; ++i)
            flipped += compiled->run(input, rng).value().steps[0].applied ? 1 : 0;
        QVERIFY2(flipped > 520 && flipped < 680, qPrintable(QString::number(flipped)));
    }

    void traceKeepsEveryStep()
    {
        const Result<CompiledPipeline> compiled = CompiledPipeline::compile(
            parseTransforms(QStringLiteral("T.Compose([T.Resize(256), T.CenterCrop(224), "
                                           "T.ToTensor(), T.Normalize((0.5,), (0.25,))])"))
                .value());
        const QImage input = loadTransformInput(image("photo.jpg")).value();
        TorchGenerator rng;
        const Result<TransformRun> run = compiled->run(input, rng, true);
        QVERIFY(run.ok());
        QCOMPARE(run->steps.size(), 4);
        QCOMPARE(run->steps[0].output.size(), QSize(341, 256));
        QCOMPARE(run->steps[1].output.size(), QSize(224, 224));
        // The centre crop of the resized image, in input coordinates.
        const QRectF box = run->steps[1].regionInInput;
        QVERIFY2(std::abs(box.center().x() - 250) < 1.5 && std::abs(box.center().y() - 187.5) < 1.5,
                 qPrintable(QStringLiteral("%1,%2").arg(box.center().x()).arg(box.center().y())));
        QVERIFY(std::abs(box.height() - 224 * 375.0 / 256) < 1.0);
        QVERIFY(run->steps[2].output.isTensor());
        // Denormalising the output gives back the ToTensor image to within rounding.
        const QImage back = tensorToImage(run->output.tensor, compiled->normalizeMean(),
                                          compiled->normalizeStd());
        const QImage before = tensorToImage(run->steps[2].output.tensor);
        QCOMPARE(back.size(), before.size());
        int maxDiff = 0;
        for (int y = 0; y < back.height(); ++y)
            for (int x = 0; x < back.width() * 3; ++x)
                maxDiff = std::max(
                    maxDiff,
                    std::abs(int(back.constScanLine(y)[x]) - int(before.constScanLine(y)[x])));
        QVERIFY(maxDiff <= 1);
        QCOMPARE(compiled->normalizeMean(), std::vector<float>{0.5f});
    }

    void compileErrorsNameTheStep_data()
    {
        QTest::addColumn<QString>("source");
        QTest::addColumn<QString>("expected");
        QTest::newRow("negative size") << "T.Resize(-3)"
                                       << "Step 1, Resize: size must be positive";
        QTest::newRow("even kernel") << "[T.ToTensor(), T.GaussianBlur(4)]"
                                     << "Step 2, GaussianBlur: Kernel size value should be an odd";
        QTest::newRow("max_size") << "T.Resize(200, max_size=100)"
                                  << "max_size = 100 must be strictly greater";
        QTest::newRow("zero std") << "T.Normalize((0.5,), (0.0,))"
                                  << "division by zero";
        QTest::newRow("bad mode") << "T.Pad(3, padding_mode='wrap')"
                                  << "padding_mode must be";
        QTest::newRow("hue") << "T.ColorJitter(hue=0.7)"
                             << "hue must be at most 0.5";
        QTest::newRow("erase value") << "T.RandomErasing(value='noise')"
                                     << "should be 'random'";
        QTest::newRow("gray channels") << "T.Grayscale(2)"
                                       << "either 1 or 3";
    }

    void compileErrorsNameTheStep()
    {
        QFETCH(QString, source);
        QFETCH(QString, expected);
        const Result<TransformPipeline> pipeline = parseTransforms(source);
        QVERIFY2(pipeline.ok(), qPrintable(pipeline.errorMessage()));
        const Result<CompiledPipeline> compiled = CompiledPipeline::compile(pipeline.value());
        QVERIFY(!compiled.ok());
        QVERIFY2(compiled.errorMessage().contains(expected), qPrintable(compiled.errorMessage()));
    }

    void memoryBoundRefusesBeforeAllocating_data()
    {
        QTest::addColumn<QString>("source");
        QTest::addColumn<qint64>("bound");
        QTest::addColumn<bool>("trace");
        QTest::addColumn<QString>("expected");
        constexpr qint64 kMiB = 1 << 20;
        // The issue's pipeline: a 10 GB resize, then a 43 GB tensor. Refused before step 1 runs.
        QTest::newRow("resize 60000²")
            << "[T.Resize((60000, 60000)), T.ToTensor()]" << 256 * kMiB << false
            << "Step 1, Resize: its output, PIL Image RGB 60000 × 60000, would take 10.1 GiB, "
               "more than the 256 MiB one run may use here";
        // The resize alone fits; the tensor of it does not: still refused before the resize.
        QTest::newRow("tensor of it")
            << "[T.Resize((4000, 4000)), T.ToTensor()]" << 64 * kMiB << false
            << "Step 2, ToTensor: its output, tensor float32 [3, 4000, "
               "4000], would take 183.1 MiB, more than the 64 MiB";
        QTest::newRow("pad") << "[T.Pad(100000)]" << 64 * kMiB << false
                             << "Step 1, Pad: its output, PIL Image RGB 200031 × 200029";
        QTest::newRow("center crop") << "T.CenterCrop(99999999)" << 256 * kMiB << false
                                     << "Step 1, CenterCrop: its output, PIL Image RGB 99999999 "
                                        "× 99999999, would take";
        // A tensor pad, after ToTensor.
        QTest::newRow("tensor pad") << "[T.ToTensor(), T.Pad((500000, 0))]" << 64 * kMiB << false
                                    << "Step 2, Pad: its output, tensor float32 [3, 29, 1000031]";
        // The expanded size depends on the angle: checked when the step runs, before rotating.
        QTest::newRow("rotation expand")
            << "[T.Resize((2000, 2000)), T.RandomRotation((45, 45), expand=True)]" << 15 * kMiB
            << false << "Step 2, RandomRotation: its output, PIL Image RGB 2831 × 2831";
        // A trace keeps every step's output: they count together.
        QTest::newRow("trace")
            << "[T.Resize((1000, 1000)), T.ToTensor(), T.Normalize((0.5,), (0.5,))]" << 20 * kMiB
            << true
            << "Step 3, Normalize: its output, tensor float32 [3, 1000, 1000], would take 11.4 "
               "MiB, more than the 20 MiB one run may use here with the 14.3 MiB that the "
               "earlier steps' outputs keep";
    }

    void memoryBoundRefusesBeforeAllocating()
    {
        QFETCH(QString, source);
        QFETCH(qint64, bound);
        QFETCH(bool, trace);
        QFETCH(QString, expected);
        Result<CompiledPipeline> compiled
            = CompiledPipeline::compile(parseTransforms(source).value());
        QVERIFY2(compiled.ok(), qPrintable(compiled.errorMessage()));
        QCOMPARE(compiled->memoryBound(), defaultTransformMemoryBound());
        compiled->setMemoryBound(bound);
        const QImage input = loadTransformInput(image("tiny.png")).value(); // 31 × 29
        rusage before{};
        getrusage(RUSAGE_SELF, &before);
        TorchGenerator rng(1);
        const Result<TransformRun> run = compiled->run(input, rng, trace);
        rusage after{};
        getrusage(RUSAGE_SELF, &after);
        QVERIFY(!run.ok());
        QVERIFY2(run.errorMessage().startsWith(expected), qPrintable(run.errorMessage()));
        QVERIFY2(run.errorMessage().endsWith(QStringLiteral(": use a smaller size")),
                 qPrintable(run.errorMessage()));
        QCOMPARE(run.error().code, ErrorCode::OutOfMemory);
        // Nothing near the refused size was allocated: the peak resident memory grew by less
        // than the bound (ru_maxrss is in KiB).
        QVERIFY2(
            (after.ru_maxrss - before.ru_maxrss) * 1024 < bound,
            qPrintable(
                QStringLiteral("peak grew by %1 KiB").arg(after.ru_maxrss - before.ru_maxrss)));
        // Without the trace, or with a bound that fits, the same steps run.
        compiled->setMemoryBound(qint64(1) << 40);
        if (bound >= 15 << 20 && !source.contains(u"60000") && !source.contains(u"99999999")
            && !source.contains(u"100000") && !source.contains(u"50000")) {
            TorchGenerator again(1);
            QVERIFY2(compiled->run(input, again, trace).ok(), qPrintable(source));
        }
    }

    void outputShapeIsKnownBeforeRunning()
    {
        auto shapeOf = [](const char *source, DataShape input) {
            return CompiledPipeline::compile(parseTransforms(QString::fromUtf8(source)).value())
                .value()
                .outputShape(input);
        };
        const DataShape unknown{3, -1, -1, false, true};
        DataShape s
            = shapeOf("[T.RandomResizedCrop(96), T.RandomHorizontalFlip(), T.ToTensor()]", unknown);
        QVERIFY(s.exact && s.tensor);
        QCOMPARE(s.describe(), QStringLiteral("tensor float32 [3, 96, 96]"));
        QCOMPARE(s.bytes(), qint64(3 * 96 * 96 * 4));
        s = shapeOf("[T.Resize(50), T.ToTensor()]", unknown);
        QVERIFY(!s.sizeKnown()); // it follows the input's aspect ratio
        s = shapeOf("[T.Resize(50), T.ToTensor()]", DataShape{3, 500, 375, false, true});
        QCOMPARE(s.describe(), QStringLiteral("tensor float32 [3, 50, 66]"));
        s = shapeOf("[T.Resize(256), T.CenterCrop(224), T.Grayscale(), T.Pad((1, 2))]", unknown);
        QVERIFY(s.exact);
        QCOMPARE(s.describe(), QStringLiteral("PIL Image L 226 × 228"));
        QCOMPARE(s.bytes(), qint64(228 * 228)); // rows padded to 4 bytes, as QImage keeps them
        s = shapeOf("[T.RandomRotation(30, expand=True)]", DataShape{3, 300, 400, false, true});
        QVERIFY(!s.exact); // an upper bound: the size depends on the angle
        QCOMPARE(s.width, qint64(502));
        // Sizes no image could have saturate instead of overflowing.
        s = shapeOf("[T.Pad(1073741824), T.ToTensor()]", DataShape{3, 10, 10, false, true});
        QCOMPARE(s.bytes(), std::numeric_limits<qint64>::max());
    }

    void exifOrientationIsOptional()
    {
        // A JPEG whose EXIF says "rotate 90° clockwise to view" (orientation 6).
        const QString path = m_dir.filePath(QStringLiteral("exif6.jpg"));
        const test::ProcessResult r = test::runProcess(
            test::oraclePython(),
            {QStringLiteral("-c"),
             QStringLiteral("import sys; from PIL import Image; im = Image.open(sys.argv[1]).crop("
                            "(0, 0, 120, 80)); ex = Image.Exif(); ex[0x0112] = 6; "
                            "im.save(sys.argv[2], exif=ex.tobytes(), quality=95)"),
             image("photo.jpg"), path});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QImage plain = loadTransformInput(path).value();
        QCOMPARE(plain.size(), QSize(120, 80)); // torchvision ignores EXIF
        LoadOptions options;
        options.applyExifOrientation = true;
        const QImage upright = loadTransformInput(path, options).value();
        QCOMPARE(upright.size(), QSize(80, 120));
        // Orientation 6 = rotate 270 (PIL's transpose): the top-left pixel of the upright image
        // is the bottom-left one of the stored image.
        QCOMPARE(upright.pixel(0, 0), plain.pixel(0, 79));
    }

    void cliWritesWhatPythonLoads()
    {
        const QString out = m_dir.filePath(QStringLiteral("cli/out.pt"));
        QDir().mkpath(m_dir.filePath(QStringLiteral("cli")));
        const QString pipeline = QStringLiteral(
            "T.Compose([T.RandomResizedCrop(64), T.RandomHorizontalFlip(), T.ToTensor(), "
            "T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])");
        const test::ProcessResult r = test::runCli(
            {QStringLiteral("transform"), image("photo.jpg"), QStringLiteral("--pipeline"),
             pipeline, QStringLiteral("--seed"), QStringLiteral("5"), QStringLiteral("-o"), out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY2(r.out.contains("RandomResizedCrop: i="), r.out.constData());
        // torch.load(weights_only=True) returns the tensor torchvision makes after the same seed.
        const QString check = QStringLiteral(R"(
import sys, torch, torchvision.transforms as T
from PIL import Image
t = torch.load(sys.argv[1], weights_only=True)
torch.manual_seed(5)
ref = eval(sys.argv[3])(Image.open(sys.argv[2]).convert('RGB'))
print(type(t).__name__, t.dtype, tuple(t.shape), t.is_contiguous(), float((t - ref).abs().max()))
)");
        const test::ProcessResult py = test::runProcess(
            test::oraclePython(), {QStringLiteral("-c"), check, out, image("photo.jpg"), pipeline});
        QVERIFY2(py.exitCode == 0, py.err.constData());
        QCOMPARE(py.out.trimmed(), QByteArray("Tensor torch.float32 (3, 64, 64) True 0.0"));

        // PNG: the denormalised image; --json: what each step drew.
        const QString png = m_dir.filePath(QStringLiteral("cli/out.png"));
        const test::ProcessResult r2 = test::runCli(
            {QStringLiteral("transform"), image("photo.jpg"), QStringLiteral("--pipeline"),
             pipeline, QStringLiteral("--seed"), QStringLiteral("5"), QStringLiteral("-o"), png,
             QStringLiteral("--json")});
        QVERIFY2(r2.exitCode == 0, r2.err.constData());
        QCOMPARE(QImage(png).size(), QSize(64, 64));
        const QJsonObject json = QJsonDocument::fromJson(r2.out).object();
        QCOMPARE(json[QStringLiteral("steps")].toArray().size(), 4);
        QCOMPARE(json[QStringLiteral("output")][QStringLiteral("shape")].toArray(),
                 (QJsonArray{3, 64, 64}));

        // Mistakes get messages that point at them.
        const test::ProcessResult bad = test::runCli(
            {QStringLiteral("transform"), image("photo.jpg"), QStringLiteral("--pipeline"),
             QStringLiteral("T.Compose([T.Resize(256), T.CentreCrop(224)])"), QStringLiteral("-o"),
             out});
        QCOMPARE(bad.exitCode, 2);
        QVERIFY2(bad.err.contains("Unknown transform") && bad.err.contains("CenterCrop"),
                 bad.err.constData());
        const test::ProcessResult missing
            = test::runCli({QStringLiteral("transform"), m_dir.filePath(QStringLiteral("nope.jpg")),
                            QStringLiteral("--pipeline"), QStringLiteral("T.ToTensor()"),
                            QStringLiteral("-o"), out});
        QCOMPARE(missing.exitCode, 1);
        QVERIFY(!missing.err.isEmpty());
    }

    // -- advice ------------------------------------------------------------------------------

    void adviceCatchesMistakes_data()
    {
        QTest::addColumn<QString>("source");
        QTest::addColumn<bool>("gray");
        QTest::addColumn<bool>("uniform");
        QTest::addColumn<int>("role");
        QTest::addColumn<QString>("expected");
        QTest::addColumn<QString>("fixed"); // the pipeline after the fix, or empty
        QTest::newRow("resize keeps aspect")
            << "[T.Resize(224), T.ToTensor(), T.Normalize((0.5,), (0.5,))]" << false << false << 0
            << "Resize(224) keeps the aspect ratio"
            << "[T.Resize((224, 224)), T.ToTensor(), T.Normalize((0.5,), (0.5,))]";
        QTest::newRow("normalize before to tensor")
            << "[T.Resize((32, 32)), T.Normalize((0.5,), (0.5,)), T.ToTensor()]" << false << true
            << 0 << "Put ToTensor() before it"
            << "[T.Resize((32, 32)), T.ToTensor(), T.Normalize((0.5,), (0.5,))]";
        QTest::newRow("gray with imagenet stats")
            << "[T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]" << true
            << true << 0 << "This dataset is grayscale"
            << "";
        QTest::newRow("random in val")
            << "[T.RandomResizedCrop(224), T.ToTensor(), T.Normalize((0.5,), (0.5,))]" << false
            << false << 1 << "validation results will change"
            << "";
        QTest::newRow("no to tensor")
            << "[T.Resize((8, 8))]" << false << true << 0 << "There is no ToTensor()"
            << "";
        QTest::newRow("normalize channels")
            << "[T.Grayscale(), T.ToTensor(), T.Normalize([0.4, 0.4, 0.4], [0.2, 0.2, 0.2])]"
            << false << true << 0 << "for 1-channel images"
            << "";
        QTest::newRow("upsampling small images")
            << "[T.RandomResizedCrop(224), T.ToTensor(), T.Normalize((0.5,), (0.5,))]" << true
            << true << 0 << "times larger"
            << "";
        QTest::newRow("lambda is named")
            << "[T.Resize((32, 32)), T.Lambda(lambda x: x.rotate(90)), T.ToTensor()]" << false
            << true << 0 << "Lambda cannot run here: a Lambda runs Python code"
            << "";
        QTest::newRow("nested normalize before to tensor")
            << "[T.Resize((32, 32)), T.RandomApply([T.Normalize((0.5,), (0.5,))]), T.ToTensor()]"
            << false << true << 0 << "Put ToTensor() before it"
            << "";
        QTest::newRow("container forgets the size")
            << "[T.RandomApply([T.RandomCrop(20)]), T.ToTensor()]" << false << true << 0
            << "RandomApply changes the size only when its transforms run"
            << "";
    }

    void adviceCatchesMistakes()
    {
        QFETCH(QString, source);
        QFETCH(bool, gray);
        QFETCH(bool, uniform);
        QFETCH(int, role);
        QFETCH(QString, expected);
        QFETCH(QString, fixed);
        DatasetTraits traits;
        traits.sampled = 10;
        traits.gray = gray;
        traits.uniformSize = uniform;
        traits.typicalSize = gray ? QSize(28, 28) : QSize(500, 375);
        const QList<PipelineAdvice> advice
            = reviewPipeline(parseTransforms(source).value(), PipelineRole(role), traits);
        const PipelineAdvice *hit = nullptr;
        QStringList all;
        for (const PipelineAdvice &a : advice) {
            all << a.message;
            if (a.message.contains(expected) || a.fixLabel.contains(expected))
                hit = &a;
        }
        QVERIFY2(hit, qPrintable(all.join(u'\n')));
        if (!fixed.isEmpty()) {
            QVERIFY(hit->fix.has_value());
            QCOMPARE(toTorchvisionSource(*hit->fix),
                     toTorchvisionSource(parseTransforms(fixed).value()));
            // The fixed pipeline no longer draws this advice.
            for (const PipelineAdvice &a : reviewPipeline(*hit->fix, PipelineRole(role), traits))
                QVERIFY2(!a.message.contains(hit->message.left(30)), qPrintable(a.message));
        }
    }

    void defaultsAreCleanAndRun()
    {
        // The defaults for photos and for small gray images draw no warnings and run.
        for (const bool small : {false, true}) {
            DatasetTraits traits;
            traits.sampled = 10;
            traits.gray = small;
            traits.uniformSize = small;
            traits.typicalSize = small ? QSize(28, 28) : QSize(500, 375);
            const PipelinePair pair = defaultPipelines(traits);
            for (const auto &[pipeline, role] : {std::pair{pair.train, PipelineRole::Train},
                                                 std::pair{pair.val, PipelineRole::Val}}) {
                for (const PipelineAdvice &a : reviewPipeline(pipeline, role, traits))
                    QVERIFY2(a.severity == PipelineAdvice::Severity::Info, qPrintable(a.message));
                const Result<CompiledPipeline> compiled = CompiledPipeline::compile(pipeline);
                QVERIFY2(compiled.ok(), qPrintable(compiled.errorMessage()));
                TorchGenerator rng(1);
                const QImage input
                    = loadTransformInput(image(small ? "gray.png" : "photo.jpg")).value();
                const Result<TransformRun> run
                    = compiled->run(small ? input.scaled(28, 28) : input, rng);
                QVERIFY2(run.ok(), qPrintable(run.errorMessage()));
                QVERIFY(run->output.isTensor());
                QCOMPARE(run->output.size(), small ? QSize(28, 28) : QSize(224, 224));
            }
        }
    }

    void datasetStatsMatchNumpy()
    {
        const QStringList paths
            = {image("photo.jpg"), image("portrait.png"), image("gray.png"), image("tiny.png")};
        std::atomic_int lastProgress{0};
        const Result<DatasetChannelStats> stats
            = computeDatasetStats(paths, 100, 1, 2, nullptr, [&](int done, int total) {
                  QCOMPARE(total, 4);
                  lastProgress = std::max(lastProgress.load(), done);
              });
        QVERIFY(stats.ok());
        QCOMPARE(stats->images, 4);
        QCOMPARE(lastProgress.load(), 4);
        const test::ProcessResult r = test::runOracle(QStringLiteral("transforms_oracle.py"),
                                                      QStringList{QStringLiteral("stats")} + paths);
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject ref = QJsonDocument::fromJson(r.out).object();
        for (int c = 0; c < 3; ++c) {
            QVERIFY(std::abs(stats->mean[size_t(c)] - ref[QStringLiteral("mean")][c].toDouble())
                    < 1e-6);
            QVERIFY(std::abs(stats->std[size_t(c)] - ref[QStringLiteral("std")][c].toDouble())
                    < 1e-6); // torch's float32 ToTensor values vs our exact v / 255
        }
        // Cancelled before it starts: says so.
        std::atomic_bool cancel{true};
        const Result<DatasetChannelStats> cancelled
            = computeDatasetStats(paths, 100, 1, 2, &cancel);
        QVERIFY(cancelled.ok() && cancelled->cancelled);
    }

    void pythonSourceRoundTrips()
    {
        const TransformPipeline train
            = parseTransforms(
                  QStringLiteral(
                      "T.Compose([T.RandomResizedCrop(224, scale=(0.5, 1.0)), "
                      "T.RandomHorizontalFlip(), "
                      "T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])"))
                  .value();
        const TransformPipeline val
            = parseTransforms(QStringLiteral("[T.Resize(256), T.CenterCrop(224), T.ToTensor()]"))
                  .value();
        const QString source = pipelinesToPython(train, val, QStringLiteral("pets"));
        const Result<QList<NamedPipeline>> back = pipelinesFromPython(source);
        QVERIFY2(back.ok(), qPrintable(back.errorMessage()));
        QCOMPARE(back->size(), 2);
        QCOMPARE(back->at(0).name, QStringLiteral("train_transform"));
        QCOMPARE(back->at(0).pipeline, train);
        QCOMPARE(back->at(1).name, QStringLiteral("val_transform"));
        QCOMPARE(back->at(1).pipeline, val);
        // And Python runs the file as it is.
        const QString path = m_dir.filePath(QStringLiteral("exported.py"));
        QVERIFY(test::writeFile(path, source.toUtf8()));
        const test::ProcessResult r = test::runOracle(QStringLiteral("transforms_oracle.py"),
                                                      {QStringLiteral("exec"), path});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject reprs = QJsonDocument::fromJson(r.out).object();
        QVERIFY(reprs.contains(QStringLiteral("train_transform")));
        QVERIFY(reprs[QStringLiteral("val_transform")].toString().contains(
            QStringLiteral("CenterCrop(size=(224, 224))")));
    }

    void pythonImportReadsUserScripts()
    {
        const QString script = QStringLiteral(
            "import torch\nfrom torchvision import transforms as T\n\n"
            "BATCH = 64  # not a pipeline\n"
            "normalize = T.Normalize(mean=[0.5, 0.5, 0.5],\n"
            "                        std=[0.5, 0.5, 0.5])\n"
            "train_tf = T.Compose([\n    T.RandomCrop(32, padding=4),  # pad then crop\n"
            "    T.RandomHorizontalFlip(),\n    T.ToTensor(),\n])\n"
            "test_tf = T.Compose([T.ToTensor()])\n");
        const Result<QList<NamedPipeline>> found = pipelinesFromPython(script);
        QVERIFY2(found.ok(), qPrintable(found.errorMessage()));
        QStringList names;
        for (const NamedPipeline &p : found.value())
            names << p.name;
        QCOMPARE(names,
                 (QStringList{QStringLiteral("normalize"), QStringLiteral("train_tf"),
                              QStringLiteral("test_tf")}));
        QCOMPARE(found->at(1).line, 7);
        QCOMPARE(found->at(1).pipeline.steps.size(), 3);
        // A Compose that does not parse is an error naming the variable and line.
        const Result<QList<NamedPipeline>> bad = pipelinesFromPython(
            QStringLiteral("x = 1\ntf = T.Compose([T.Resize(224), Posterise(f)])\n"));
        QVERIFY(!bad.ok());
        QVERIFY2(bad.errorMessage().contains(QStringLiteral("“tf” (line 2)")),
                 qPrintable(bad.errorMessage()));
    }
};

QTEST_GUILESS_MAIN(TstTransforms)
#include "tst_transforms.moc"
