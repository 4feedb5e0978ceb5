// Randomised conformance with torchvision 0.14: the oracle draws hundreds of seeded pipelines
// over every transform the engine runs (nested RandomApply / RandomChoice / RandomOrder and
// Compose, the augmentation policies, the ImageOps transforms, RandomPerspective, FiveCrop and
// TenCrop's tuples side by side, and the rest)
// on images of every mode, runs them in Python, and each must come out the same here: the same
// shape and kind, pixels equal within the tolerance the README states for its ops (exact, or one
// 8-bit step where PIL's bilinear/bicubic transform or GaussianBlur runs), or a refusal where
// torchvision raises.
#include "testutil.h"

#include "transforms/torchrng.h"
#include "transforms/transforms.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace ifs;

namespace {

constexpr int kCount = 400;
constexpr int kSeed = 20260117;

QByteArray readAll(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

/// Empty when equal within tolerance; else what differs.
QString compare(const TransformData &ours, const QJsonObject &theirs, const QByteArray &bytes,
                int tolerance)
{
    const QJsonArray shape = theirs[QStringLiteral("shape")].toArray();
    const auto shapeText = [&shape] {
        return QString::fromUtf8(QJsonDocument(shape).toJson(QJsonDocument::Compact));
    };
    if (theirs[QStringLiteral("kind")].toString() == u"tensor") {
        if (!ours.isTensor())
            return QStringLiteral("torchvision made a tensor, we made %1").arg(ours.describe());
        const ImageTensor &t = ours.tensor;
        if (shape != QJsonArray{t.channels, t.height, t.width})
            return QStringLiteral("shape: torchvision %1, ours %2")
                .arg(shapeText(), ours.describe());
        if (bytes.size() != qsizetype(t.data.size() * sizeof(float)))
            return QStringLiteral("byte count differs");
        const float *ref = reinterpret_cast<const float *>(bytes.constData());
        double maxDiff = 0.0;
        for (size_t i = 0; i < t.data.size(); ++i) {
            const double a = ref[i], b = t.data[i];
            if (std::isnan(a) != std::isnan(b))
                return QStringLiteral("NaN at %1").arg(i);
            if (!std::isnan(a))
                maxDiff = std::max(maxDiff, std::abs(a - b));
        }
        // 8-bit steps, scaled by the largest 1/std a Normalize applies here (1 / 0.2).
        const double allowed = tolerance * (1.0 / 255.0) * 5.0 + 1e-6;
        if (maxDiff > allowed)
            return QStringLiteral("values differ by up to %1").arg(maxDiff);
        return {};
    }
    if (ours.isTensor())
        return QStringLiteral("torchvision made a PIL image, we made a tensor");
    const QImage &img = ours.image;
    const int c = ours.channels();
    if (shape != QJsonArray{img.height(), img.width(), c})
        return QStringLiteral("shape: torchvision %1, ours %2").arg(shapeText(), ours.describe());
    int maxDiff = 0;
    qsizetype differing = 0;
    for (int y = 0; y < img.height(); ++y) {
        const uchar *row = img.constScanLine(y);
        const auto *ref
            = reinterpret_cast<const uchar *>(bytes.constData()) + qsizetype(y) * img.width() * c;
        for (int x = 0; x < img.width() * c; ++x) {
            const int d = std::abs(int(row[x]) - int(ref[x]));
            differing += d ? 1 : 0;
            maxDiff = std::max(maxDiff, d);
        }
    }
    if (maxDiff > tolerance)
        return QStringLiteral("%1 values differ, by up to %2").arg(differing).arg(maxDiff);
    return {};
}

} // namespace

class TstTransformConformance : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QJsonArray m_cases;
    QJsonArray m_results;

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        const QString out = m_dir.filePath(QStringLiteral("out"));
        QDir().mkpath(out);
        const test::ProcessResult r
            = test::runOracle(QStringLiteral("transforms_oracle.py"),
                              {QStringLiteral("fuzz"), QString::number(kCount),
                               QString::number(kSeed), m_dir.path(), out},
                              300000);
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject reply = QJsonDocument::fromJson(r.out).object();
        m_cases = reply[QStringLiteral("cases")].toArray();
        m_results = reply[QStringLiteral("results")].toArray();
        QCOMPARE(m_cases.size(), qsizetype(kCount));
        QCOMPARE(m_results.size(), qsizetype(kCount));
    }

    void randomPipelinesMatchTorchvision()
    {
        int compared = 0, refused = 0;
        QStringList failures;
        for (int k = 0; k < kCount; ++k) {
            const QJsonObject c = m_cases[k].toObject();
            const QJsonObject theirs = m_results[k].toObject();
            const QString source = c[QStringLiteral("pipeline")].toString();
            const QString where
                = QStringLiteral("case %1 (%2, seed %3): %4")
                      .arg(k)
                      .arg(QFileInfo(c[QStringLiteral("image")].toString()).fileName())
                      .arg(c[QStringLiteral("seed")].toInteger())
                      .arg(source);
            const Result<TransformPipeline> pipeline = parseTransforms(source);
            if (!pipeline) {
                failures.append(where + QStringLiteral("\n  does not parse: ")
                                + pipeline.errorMessage());
                continue;
            }
            const Result<QImage> input = loadTransformInput(c[QStringLiteral("image")].toString());
            QVERIFY2(input.ok(), qPrintable(input.errorMessage()));
            // As a preview compiles: FiveCrop and TenCrop run (training refuses them).
            Result<CompiledPipeline> compiled
                = CompiledPipeline::compile(pipeline.value(), CompiledPipeline::Unsupported::Skip);
            TorchGenerator rng(uint64_t(c[QStringLiteral("seed")].toInteger()));
            const Result<TransformRun> run = compiled ? compiled->run(input.value(), rng)
                                                      : Result<TransformRun>(compiled.error());
            if (!theirs[QStringLiteral("ok")].toBool()) {
                if (run)
                    failures.append(where
                                    + QStringLiteral("\n  torchvision raised (%1), we ran")
                                          .arg(theirs[QStringLiteral("error")].toString()));
                ++refused;
                continue;
            }
            if (!run) {
                failures.append(where + QStringLiteral("\n  we refused: ") + run.errorMessage());
                continue;
            }
            const QByteArray bytes = readAll(m_dir.filePath(QStringLiteral("out/%1.bin").arg(k)));
            const QString mismatch
                = compare(run->output, theirs, bytes, c[QStringLiteral("tolerance")].toInt());
            if (!mismatch.isEmpty())
                failures.append(where + QStringLiteral("\n  ") + mismatch);
            ++compared;
        }
        qInfo() << compared << "outputs compared," << refused << "refusals shared";
        QVERIFY2(failures.isEmpty(),
                 qPrintable(
                     QStringLiteral("%1 of %2 pipelines differ:\n").arg(failures.size()).arg(kCount)
                     + failures.mid(0, 15).join(u'\n')));
        // Most drawn pipelines run (the refusals are real ones: fill per channel on a gray
        // image, Normalize's channels after Grayscale).
        QVERIFY(compared > kCount * 3 / 4);
    }
};

QTEST_GUILESS_MAIN(TstTransformConformance)
#include "tst_transformconformance.moc"
