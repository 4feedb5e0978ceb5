// Near-duplicates: the perceptual hash equals PIL + numpy's (tests/tools/nearduplicates_oracle.py),
// the multi-index search finds exactly the pairs a comparison of all pairs finds, and the health
// check finds resized, re-encoded (JPEG quality 50-95) and cropped copies of Fashion-MNIST
// images planted across its splits, as leakage errors, with no other finding among the real
// images. IFS_MEASURE_NEAR_DUPLICATES=<IDX folder> measures the distances on all 70,000.
#include "testutil.h"

#include "dataset/healthcheck.h"
#include "dataset/imagefolder.h"
#include "dataset/nearduplicates.h"
#include "dataset/sampledata.h"
#include "image/imageprobe.h"

#include <QDir>
#include <QElapsedTimer>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <deque>
#include <map>
#include <random>

using namespace ifs;
using namespace Qt::StringLiterals;

namespace {

struct Scanned
{
    std::deque<ImageFolderIndex> indexes;
    QList<HealthTarget> targets;

    explicit Scanned(const QString &root, const QStringList &splits)
    {
        for (const QString &split : splits) {
            auto index = scanImageFolder(root + u'/' + split);
            if (!index)
                qFatal("scan failed: %s", qPrintable(index.errorMessage()));
            indexes.push_back(std::move(index).value());
            targets.append({split, &indexes.back()});
        }
    }
};

/// A copy of `source` as people make them: resized, re-encoded, cropped.
struct Variant
{
    const char *name;
    QSize size; ///< resized to this (after the crop); invalid: as it is
    QRect crop; ///< from the 28 × 28 original; null: none
    int jpegQuality; ///< 0: PNG
};

/// Resized and re-encoded copies; the last two are also cropped: 1 pixel off every side of
/// the picture enlarged to 224 × 224 (0.45 % a side).
const Variant kVariants[] = {
    {"up2x", {56, 56}, {}, 0},
    {"jpeg50", {}, {}, 50},
    {"jpeg95", {}, {}, 95},
    {"up1.5x-jpeg75", {42, 42}, {}, 75},
    {"up4x-jpeg60", {112, 112}, {}, 60},
    {"down24", {24, 24}, {}, 0},
    {"up8x-crop", {224, 224}, {1, 1, 222, 222}, 0},
    {"up8x-crop-jpeg85", {224, 224}, {1, 1, 222, 222}, 85},
};

bool writeVariant(const QString &source, const Variant &v, const QString &dest)
{
    QImage image(source);
    if (image.isNull())
        return false;
    if (v.size.isValid())
        image = image.scaled(v.size, Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
    if (!v.crop.isNull())
        image = image.copy(v.crop);
    return v.jpegQuality > 0 ? image.save(dest, "JPG", v.jpegQuality) : image.save(dest, "PNG");
}

} // namespace

class TstNearDuplicates : public QObject
{
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_data;
    QString m_source;

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        SampleDataOptions options;
        m_source = test::fashionMnistSource(m_dir.path());
        options.source = m_source;
        options.limitPerClass = 30;
        auto exported = exportFashionMnist(m_dir.filePath(u"fmnist"_s), options);
        QVERIFY2(exported, qPrintable(exported.errorMessage()));
        m_data = exported->root;
    }

    /// Our hash is PIL + numpy's on the same PNGs, bit for bit.
    void hashIsThePythonDefinition()
    {
        QStringList files;
        const QDir train(m_data + u"/train"_s);
        for (const QString &cls : train.entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name)) {
            const QDir folder(train.filePath(cls));
            for (const QString &name : folder.entryList(QDir::Files, QDir::Name).mid(0, 3))
                files.append(folder.filePath(name));
        }
        const QString big = m_dir.filePath(u"big.png"_s); // a colour image larger than 32 × 32
        QImage colour(QImage(files[0]).scaled(97, 61).convertToFormat(QImage::Format_RGB888));
        for (int y = 0; y < colour.height(); ++y)
            for (int x = 0; x < colour.width(); ++x)
                colour.setPixel(x, y, qRgb(qGray(colour.pixel(x, y)), x * 2, y * 4));
        QVERIFY(colour.save(big));
        files.append(big);
        const test::ProcessResult oracle
            = test::runOracle(u"nearduplicates_oracle.py"_s, QStringList{u"hash"_s} + files);
        QVERIFY2(oracle.exitCode == 0, oracle.err.constData());
        const QList<QByteArray> lines = oracle.out.trimmed().split('\n');
        QCOMPARE(lines.size(), files.size());
        for (qsizetype i = 0; i < files.size(); ++i) {
            const auto image = loadImageRgb(files[i]);
            QVERIFY(image);
            const uint64_t ours = perceptualHash(image.value());
            QCOMPARE(QByteArray::number(qulonglong(ours), 16).rightJustified(16, '0'), lines[i]);
            QCOMPARE(std::popcount(ours), 32); // above the median: half the bits
        }
        QCOMPARE(perceptualHash(QImage()), uint64_t(0));
    }

    /// Multi-index hashing finds what comparing every pair finds, for every threshold.
    void searchEqualsAllPairs()
    {
        std::mt19937_64 rng(11);
        std::vector<uint64_t> hashes;
        for (int i = 0; i < 1500; ++i)
            hashes.push_back(rng());
        for (int i = 0; i < 600; ++i) { // near copies, some within reach of several others
            uint64_t h = hashes[rng() % hashes.size()];
            for (int flips = int(rng() % 14); flips > 0; --flips)
                h ^= uint64_t(1) << (rng() % 64);
            hashes.push_back(h);
        }
        std::vector<bool> valid(hashes.size(), true);
        valid[7] = valid[1600] = false;
        for (const int threshold : {0, 1, 3, 4, 6, 8, 10, 12}) {
            std::vector<std::tuple<size_t, size_t, int>> expected;
            for (size_t a = 0; a < hashes.size(); ++a)
                for (size_t b = a + 1; b < hashes.size(); ++b)
                    if (valid[a] && valid[b] && hammingDistance(hashes[a], hashes[b]) <= threshold)
                        expected.emplace_back(a, b, hammingDistance(hashes[a], hashes[b]));
            std::vector<std::tuple<size_t, size_t, int>> found;
            for (const NearDuplicatePair &p : findNearDuplicatePairs(hashes, threshold, valid))
                found.emplace_back(p.a, p.b, p.distance);
            QCOMPARE(found, expected);
        }
        // Groups: connected pairs.
        const std::vector<NearDuplicatePair> pairs{{0, 3, 1}, {3, 5, 2}, {2, 4, 0}};
        const auto groups = nearDuplicateGroups(6, pairs);
        QCOMPARE(groups, (std::vector<std::vector<size_t>>{{0, 3, 5}, {2, 4}}));

        // 100,000 hashes: no comparison of all pairs (time on the log, not asserted).
        std::vector<uint64_t> many;
        for (int i = 0; i < 100000; ++i)
            many.push_back(rng());
        QElapsedTimer timer;
        timer.start();
        const auto manyPairs = findNearDuplicatePairs(many, kNearDuplicateThreshold);
        qInfo("100,000 random hashes, threshold %d: %zu pairs in %lld ms", kNearDuplicateThreshold,
              manyPairs.size(), qint64(timer.elapsed()));
    }

    /// Copies planted in val are found as leakage of their train originals; the real images
    /// give no finding at the defaults.
    void plantedCopiesAreFound()
    {
        const QString root = m_dir.filePath(u"planted"_s);
        QVERIFY(QDir().mkpath(root));
        QVERIFY(QDir(m_data).rename(m_data + u"/train"_s, root + u"/train"_s));
        QVERIFY(QDir(m_data).rename(m_data + u"/val"_s, root + u"/val"_s));
        const auto restore = qScopeGuard([&] {
            QDir().rename(root + u"/train"_s, m_data + u"/train"_s);
            QDir().rename(root + u"/val"_s, m_data + u"/val"_s);
        });
        // Every variant twice per class, each of another original (so that no copy is found
        // through another copy of its group), in the same class of val.
        QMap<QString, QString> plantedFrom; // "val/<class>/<file>" -> "train/<class>/<file>"
        std::map<QString, std::pair<int, double>> worst; // per variant: bits, difference
        const QDir train(root + u"/train"_s);
        for (const QString &cls : train.entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name)) {
            const QStringList files = QDir(train.filePath(cls)).entryList(QDir::Files, QDir::Name);
            for (int n = 0; n < 2 * int(std::size(kVariants)); ++n) {
                const Variant &v = kVariants[n % std::size(kVariants)];
                const QString file = files[2 + n];
                const QString source = train.filePath(cls + u'/' + file);
                const ImageFingerprint original = imageFingerprint(loadImageRgb(source).value());
                {
                    const QString name
                        = u"copy_%1_%2.%3"_s.arg(QFileInfo(file).baseName(), QLatin1String(v.name),
                                                 v.jpegQuality ? u"jpg"_s : u"png"_s);
                    const QString dest = root + u"/val/"_s + cls + u'/' + name;
                    QVERIFY(writeVariant(source, v, dest));
                    plantedFrom.insert(u"val/"_s + cls + u'/' + name,
                                       u"train/"_s + cls + u'/' + file);
                    const ImageFingerprint copy = imageFingerprint(loadImageRgb(dest).value());
                    auto &[bits, difference] = worst[QLatin1String(v.name)];
                    bits = std::max(bits, hammingDistance(copy.hash, original.hash));
                    difference = std::max(difference, thumbnailDifference(copy, original));
                }
            }
        }
        for (const auto &[variant, w] : worst)
            qInfo("%-18s at most %2d bits apart, thumbnails %.2f grey levels apart",
                  qPrintable(variant), w.first, w.second);

        Scanned scanned(root, {u"train"_s, u"val"_s});
        HealthOptions options;
        options.threads = 2;
        options.findNearDuplicates = true;
        auto findAll = [&](const HealthOptions &o) {
            const HealthReport report = checkHealth(scanned.targets, o);
            QMap<QString, QString> found;
            for (const HealthFinding &f : report.findings) {
                const QString name = f.split + u'/' + f.relativePath;
                if (!plantedFrom.contains(name) || f.kind != HealthFinding::Kind::NearDuplicate) {
                    qWarning() << "a false positive:" << f.message;
                    found.insert(u"false positive "_s + name, f.duplicateOf);
                    continue;
                }
                if (f.severity == HealthFinding::Severity::Error
                    && f.message.contains(u"leakage"_s))
                    found.insert(name, f.duplicateOf); // across splits: leakage
            }
            return std::pair(report.filesChecked, found);
        };
        const auto [checked, found] = findAll(options);
        QCOMPARE(checked, 600 + plantedFrom.size());
        QStringList missing, extra;
        for (auto it = plantedFrom.cbegin(); it != plantedFrom.cend(); ++it)
            if (found.value(it.key()) != it.value())
                missing.append(it.key());
        for (auto it = found.cbegin(); it != found.cend(); ++it)
            if (!plantedFrom.contains(it.key()))
                extra.append(it.key());
        // Every copy, as leakage of its original, and nothing else.
        QVERIFY2(missing.isEmpty() && extra.isEmpty(),
                 qPrintable(u"missed: "_s + missing.join(u", "_s) + u"; extra: "_s
                            + extra.join(u", "_s)));

        // The CLI reports them too, as errors in its JSON.
        const test::ProcessResult run
            = test::runCli({u"check"_s, root, u"--near-duplicates"_s, u"--json"_s});
        QCOMPARE(run.exitCode, 1);
        const QJsonArray findings = QJsonDocument::fromJson(run.out)[u"findings"].toArray();
        QCOMPARE(findings.size(), found.size());
        for (const QJsonValue &f : findings) {
            QCOMPARE(f[u"kind"].toString(), u"near_duplicate"_s);
            QCOMPARE(f[u"severity"].toString(), u"error"_s);
            QCOMPARE(f[u"duplicate_of"].toString(),
                     plantedFrom.value(u"val/"_s + f[u"path"].toString()));
            QVERIFY(f[u"hash_distance"].toInt() <= kNearDuplicateThreshold);
        }
        // Without the option: none.
        const test::ProcessResult plain = test::runCli({u"check"_s, root, u"--json"_s});
        QCOMPARE(plain.exitCode, 0);
        QCOMPARE(QJsonDocument::fromJson(plain.out)[u"findings"].toArray().size(), 0);
    }

    /// Within a split a near-duplicate is a warning; byte-identical copies stay duplicates.
    void withinSplitAndExactCopies()
    {
        const QString root = m_dir.filePath(u"within"_s);
        const QDir train(m_data + u"/train"_s);
        const QString cls = train.entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name).at(3);
        const QStringList files = QDir(train.filePath(cls)).entryList(QDir::Files, QDir::Name);
        QVERIFY(QDir().mkpath(root + u"/a"_s));
        for (int i = 0; i < 5; ++i)
            QVERIFY(QFile::copy(train.filePath(cls + u'/' + files[i]), root + u"/a/"_s + files[i]));
        QVERIFY(QFile::copy(root + u"/a/"_s + files[0], root + u"/a/exact.png"_s));
        QVERIFY(
            writeVariant(root + u"/a/"_s + files[1], kVariants[1], root + u"/a/z_jpeg50.jpg"_s));
        Scanned scanned(root, {QString()});
        HealthOptions options;
        options.findNearDuplicates = true;
        const HealthReport report = checkHealth(scanned.targets, options);
        QCOMPARE(report.findings.size(), 2);
        for (const HealthFinding &f : report.findings) {
            if (f.kind == HealthFinding::Kind::Duplicate) {
                QCOMPARE(f.relativePath, u"a/exact.png"_s);
            } else {
                QCOMPARE(f.kind, HealthFinding::Kind::NearDuplicate);
                QCOMPARE(f.severity, HealthFinding::Severity::Warning);
                QCOMPARE(f.relativePath, u"a/z_jpeg50.jpg"_s);
                QCOMPARE(f.duplicateOf, u"a/"_s + files[1]);
            }
        }
    }

    /// IFS_MEASURE_NEAR_DUPLICATES=1: the pairs among all 70,000 Fashion-MNIST images (the
    /// README's numbers), and how many of them are the same picture (pixels at most 1 grey
    /// level apart on average).
    void measureFashionMnist()
    {
        if (qEnvironmentVariableIsEmpty("IFS_MEASURE_NEAR_DUPLICATES"))
            QSKIP("set IFS_MEASURE_NEAR_DUPLICATES=1 to measure on all of Fashion-MNIST");
        SampleDataOptions options;
        options.source = m_source;
        auto exported = exportFashionMnist(m_dir.filePath(u"full"_s), options);
        QVERIFY2(exported, qPrintable(exported.errorMessage()));
        Scanned scanned(exported->root, {u"train"_s, u"val"_s});
        std::vector<ImageFingerprint> prints;
        std::vector<QImage> pixels;
        QElapsedTimer timer;
        timer.start();
        for (const ImageFolderIndex &index : scanned.indexes) {
            for (const Sample &s : index.samples) {
                const QImage image = loadImageRgb(index.absolutePath(s)).value();
                prints.push_back(imageFingerprint(image));
                pixels.push_back(image.convertToFormat(QImage::Format_Grayscale8));
            }
        }
        qInfo("%zu images fingerprinted in %lld ms", prints.size(), qint64(timer.elapsed()));
        auto pixelDifference = [&pixels](size_t a, size_t b) {
            const QImage &x = pixels[a], &y = pixels[b];
            if (x.size() != y.size())
                return 255.0;
            qint64 sum = 0;
            for (int r = 0; r < x.height(); ++r)
                for (int c = 0; c < x.width(); ++c)
                    sum += std::abs(int(x.constScanLine(r)[c]) - int(y.constScanLine(r)[c]));
            return double(sum) / double(x.width() * x.height());
        };
        for (const int threshold : {kNearDuplicateThreshold}) {
            std::vector<uint64_t> hashes;
            for (const ImageFingerprint &p : prints)
                hashes.push_back(p.hash);
            timer.restart();
            const auto pairs = findNearDuplicatePairs(hashes, threshold);
            qInfo("hashes within %d bits: %zu pairs, found in %lld ms", threshold, pairs.size(),
                  qint64(timer.elapsed()));
            for (const double limit : {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}) {
                NearDuplicateOptions o;
                o.threshold = threshold;
                o.maxDifference = limit;
                timer.restart();
                const auto kept = findNearDuplicates(prints, o);
                int same = 0;
                for (const NearDuplicatePair &p : kept)
                    same += pixelDifference(p.a, p.b) <= 1.0 ? 1 : 0;
                qInfo("  thumbnails within %.0f grey levels: %zu pairs (%d of them the same "
                      "picture, pixels within 1 level), %lld ms",
                      limit, kept.size(), same, qint64(timer.elapsed()));
            }
        }
    }
};

QTEST_GUILESS_MAIN(TstNearDuplicates)
#include "tst_nearduplicates.moc"
