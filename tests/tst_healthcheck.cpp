// checkHealth() and `ifstudio-cli check` on a hostile corpus of real images made by PIL. The
// oracle is torchvision's own loader (pil_loader, Pillow 9.4, /usr/bin/python3): exactly the files
// it fails on must be errors, and nothing else.
#include "base/filenames.h"
#include "dataset/datasetlayout.h"
#include "dataset/healthcheck.h"
#include "dataset/imagefolder.h"
#include "image/imageprobe.h"

#include "testutil.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMutex>
#include <QRandomGenerator>
#include <QScopeGuard>
#include <QSet>
#include <QTemporaryDir>
#include <QTest>

#include <deque>

using namespace ifs;

namespace {

using Kind = HealthFinding::Kind;
using Severity = HealthFinding::Severity;

Kind kindFromName(const QString &name)
{
    static const QHash<QString, Kind> kinds = {
        {QStringLiteral("ZeroByte"), Kind::ZeroByte},
        {QStringLiteral("Unreadable"), Kind::Unreadable},
        {QStringLiteral("Truncated"), Kind::Truncated},
        {QStringLiteral("HugeDimensions"), Kind::HugeDimensions},
        {QStringLiteral("TinyDimensions"), Kind::TinyDimensions},
        {QStringLiteral("UnusualMode"), Kind::UnusualMode},
        {QStringLiteral("WrongExtension"), Kind::WrongExtension},
        {QStringLiteral("Duplicate"), Kind::Duplicate},
    };
    return kinds.value(name, Kind(-1));
}

QString findingName(const HealthFinding &finding)
{
    return finding.split.isEmpty() ? finding.relativePath
                                   : finding.split + u'/' + finding.relativePath;
}

QByteArray readAll(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

/// A dataset scanned the way the app and the CLI scan it: per split, empty classes allowed.
struct Scanned
{
    DatasetLayout layout;
    std::deque<ImageFolderIndex> indexes; // stable addresses for HealthTarget
    QList<HealthTarget> targets;

    explicit Scanned(const QString &root)
    {
        layout = detectLayout(root);
        const QStringList splits = layout.hasSplits() ? layout.splits : QStringList{QString()};
        for (const QString &split : splits) {
            ScanOptions options;
            options.allowEmpty = true;
            Result<ImageFolderIndex> index = scanImageFolder(layout.splitRoot(split), options);
            if (!index.ok())
                qFatal("scan failed: %s", qPrintable(index.errorMessage()));
            indexes.push_back(std::move(index).value());
            targets.append({split, &indexes.back()});
        }
    }

    int64_t sampleCount() const
    {
        int64_t count = 0;
        for (const ImageFolderIndex &index : indexes)
            count += index.sampleCount();
        return count;
    }
};

} // namespace

class TestHealthCheck : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void splitLayoutIsFound();
    void errorsAreExactlyWhatPilFails_data();
    void errorsAreExactlyWhatPilFails();
    void kindsMatchTheCorpus_data();
    void kindsMatchTheCorpus();
    void duplicatesPointAtTheFirstCopy();
    void messagesNameTheFile();
    void totals();
    void oneThreadGivesTheSameReport();
    void plainRoot();
    void grayDatasetIsNotUnusual();
    void hugeButLoadableIsAWarning();
    void beyondTwicePilsLimitIsAnError();
    void cutsAgreeWithPil();
    void corruptionsAgreeWithPil();
    void jpegWithDamagedEndMarker();
    void progressAndCancel();
    void undecodableNamesAreCheckedByTheirBytes();

    void cliJson();
    void cliHuman();
    void cliExitCodes();

private:
    QString pathIn(const QString &relative) const { return m_dir.filePath(relative); }
    void writeCutsAndCorruptions();
    void writeDamagedEndMarker();
    bool pilLoads(const QString &relative) const
    {
        return m_oracle.value(relative).value(u"ok").toBool();
    }

    QTemporaryDir m_dir;
    QString m_split; ///< the corpus with train/ and val/
    QString m_flat; ///< the corpus as one ImageFolder root
    QMap<QString, QJsonObject> m_oracle; ///< path relative to m_dir -> what PIL said
    QMap<QString, QStringList> m_expected; ///< "train/odd/tiny.png" -> kinds planted
    QStringList m_cuts; ///< relative to m_dir
    QStringList m_corruptions;
    std::unique_ptr<Scanned> m_scanned;
    HealthReport m_report;
};

void TestHealthCheck::initTestCase()
{
    QVERIFY(m_dir.isValid());
    m_split = pathIn(QStringLiteral("split"));
    m_flat = pathIn(QStringLiteral("flat"));
    test::ProcessResult made = test::runOracle(QStringLiteral("make_hostile_corpus.py"),
                                               {m_split, QStringLiteral("--split")});
    QVERIFY2(made.exitCode == 0 && !made.crashed, made.err.constData());
    const QJsonArray planted = QJsonDocument::fromJson(made.out).object()[u"files"].toArray();
    for (const QJsonValue &file : planted) {
        QStringList kinds;
        for (const QJsonValue &kind : file[u"kinds"].toArray())
            kinds += kind.toString();
        m_expected.insert(file[u"path"].toString(), kinds);
    }
    made = test::runOracle(QStringLiteral("make_hostile_corpus.py"), {m_flat});
    QVERIFY2(made.exitCode == 0 && !made.crashed, made.err.constData());
    made = test::runOracle(QStringLiteral("health_large_png.py"),
                           {pathIn(QStringLiteral("large/big/large.png"))});
    QVERIFY2(made.exitCode == 0 && !made.crashed, made.err.constData());
    // 14351 × 12471 = 178,971,321 pixels: just beyond twice PIL's limit (178,956,970).
    made = test::runOracle(QStringLiteral("health_large_png.py"),
                           {pathIn(QStringLiteral("bomb/big/bomb.png")), QStringLiteral("14351"),
                            QStringLiteral("12471")});
    QVERIFY2(made.exitCode == 0 && !made.crashed, made.err.constData());
    writeCutsAndCorruptions();
    writeDamagedEndMarker();

    // One run of the oracle over everything (importing torchvision takes a while).
    const test::ProcessResult oracle
        = test::runOracle(QStringLiteral("health_pil_oracle.py"), {m_dir.path()});
    QVERIFY2(oracle.exitCode == 0 && !oracle.crashed, oracle.err.constData());
    const QJsonArray files = QJsonDocument::fromJson(oracle.out).object()[u"files"].toArray();
    for (const QJsonValue &file : files)
        m_oracle.insert(file[u"path"].toString(), file.toObject());
    QVERIFY(m_oracle.size() > 1000);

    m_scanned = std::make_unique<Scanned>(m_split);
    m_report = checkHealth(m_scanned->targets);
}

void TestHealthCheck::writeCutsAndCorruptions()
{
    // Files cut short at many places (every byte near the end, the chunk and marker boundaries,
    // evenly spaced points) and files with one byte changed.
    // TIFF is cut but not corrupted: PIL reads uncompressed TIFFs with its own lenient directory
    // parser, libtiff (through OpenCV) refuses some broken directory entries PIL shrugs off.
    const QStringList sources = {
        QStringLiteral("normal/multi_idat.png"), QStringLiteral("normal/rgb.png"),
        QStringLiteral("normal/rgb.jpg"),        QStringLiteral("normal/progressive.jpg"),
        QStringLiteral("normal/rgb.webp"),       QStringLiteral("normal/rgb.bmp"),
        QStringLiteral("normal/rgb.ppm"),        QStringLiteral("odd/palette.gif"),
        QStringLiteral("odd/gray16.png"),        QStringLiteral("odd/cmyk.jpg"),
        QStringLiteral("odd/rgba.webp"),         QStringLiteral("odd/palette_trns.png"),
        QStringLiteral("normal/rgb.tif"),
    };
    QRandomGenerator random(1128);
    for (const QString &source : sources) {
        const QByteArray bytes = readAll(m_split + QStringLiteral("/train/") + source);
        QVERIFY(!bytes.isEmpty());
        const QFileInfo info(source);
        QSet<qsizetype> cuts;
        for (qsizetype at = std::max<qsizetype>(1, bytes.size() - 40); at < bytes.size(); ++at)
            cuts.insert(at);
        for (int i = 1; i < 30; ++i)
            cuts.insert(bytes.size() * i / 30);
        for (qsizetype at = 0; at + 1 < bytes.size(); ++at) {
            const bool marker = info.suffix() == u"jpg" && uchar(bytes[at]) == 0xFF
                && uchar(bytes[at + 1]) >= 0xC0 && uchar(bytes[at + 1]) != 0xFF;
            const bool chunk = info.suffix() == u"png" && at >= 4 && bytes.mid(at, 4) == "IDAT";
            if (marker || chunk) {
                for (qsizetype d = -6; d <= 6; ++d)
                    cuts.insert(std::clamp<qsizetype>(at + d, 1, bytes.size() - 1));
            }
        }
        for (qsizetype cut : std::as_const(cuts)) {
            const QString relative = QStringLiteral("cuts/%1/%2_%3.%4")
                                         .arg(info.dir().dirName(), info.baseName())
                                         .arg(cut)
                                         .arg(info.suffix());
            QVERIFY(test::writeFile(pathIn(relative), bytes.left(cut)));
            m_cuts += relative;
        }
        for (int i = 0; i < (info.suffix() == u"tif" ? 0 : 40); ++i) {
            QByteArray corrupt = bytes;
            // Half of them in the last quarter, where the image data is.
            // Not the JPEG EOI marker: see jpegWithDamagedEndMarker().
            const quint32 from = i % 2 ? quint32(bytes.size() * 3 / 4) : 0;
            const quint32 to = quint32(bytes.size() - (info.suffix() == u"jpg" ? 2 : 0));
            const qsizetype at = qsizetype(random.bounded(from, to));
            corrupt[at] = char(uchar(corrupt[at]) ^ (1 + random.bounded(255)));
            const QString relative = QStringLiteral("corrupt/%1/%2_%3_at%4.%5")
                                         .arg(info.dir().dirName(), info.baseName())
                                         .arg(i)
                                         .arg(at)
                                         .arg(info.suffix());
            QVERIFY(test::writeFile(pathIn(relative), corrupt));
            m_corruptions += relative;
        }
    }
}

void TestHealthCheck::writeDamagedEndMarker()
{
    QByteArray bytes = readAll(m_split + QStringLiteral("/train/normal/rgb.jpg"));
    QCOMPARE(bytes.right(2), QByteArray("\xff\xd9"));
    bytes[bytes.size() - 2] = 0x42;
    QVERIFY(test::writeFile(pathIn(QStringLiteral("damaged/normal/rgb_damaged_eoi.jpg")), bytes));
}

void TestHealthCheck::splitLayoutIsFound()
{
    QCOMPARE(m_scanned->layout.splits,
             QStringList({QStringLiteral("train"), QStringLiteral("val")}));
    // Every file with one of torchvision's extensions is a sample (GIF is not one of them).
    int64_t withExtension = 0;
    for (auto it = m_oracle.cbegin(); it != m_oracle.cend(); ++it) {
        if (it.key().startsWith(u"split/") && hasImageExtension(it.key().toStdString()))
            ++withExtension;
    }
    QCOMPARE(m_scanned->sampleCount(), withExtension);
    QVERIFY(withExtension > 80);
}

void TestHealthCheck::errorsAreExactlyWhatPilFails_data()
{
    QTest::addColumn<QString>("name");
    for (const ImageFolderIndex &index : m_scanned->indexes) {
        const QString split = QFileInfo(index.root).fileName();
        for (const Sample &sample : index.samples) {
            const QString name = split + u'/' + sample.displayPath();
            QTest::newRow(qPrintable(name)) << name;
        }
    }
}

void TestHealthCheck::errorsAreExactlyWhatPilFails()
{
    QFETCH(QString, name);
    const QJsonObject pil = m_oracle.value(QStringLiteral("split/") + name);
    QVERIFY2(!pil.isEmpty(), "the oracle did not see this file");
    QStringList errors;
    for (const HealthFinding &finding : std::as_const(m_report.findings)) {
        if (findingName(finding) == name && finding.severity == Severity::Error)
            errors += finding.message;
    }
    if (pil[u"ok"].toBool()) {
        QVERIFY2(errors.isEmpty(), qPrintable(u"PIL loads it, but: " + errors.join(u' ')));
    } else {
        QVERIFY2(errors.size() == 1,
                 qPrintable(u"PIL fails (" + pil[u"error"].toString() + u"), we found "
                            + QString::number(errors.size()) + u" errors"));
    }
}

void TestHealthCheck::kindsMatchTheCorpus_data()
{
    QTest::addColumn<QString>("name");
    QTest::addColumn<QStringList>("kinds");
    for (auto it = m_expected.cbegin(); it != m_expected.cend(); ++it) {
        if (hasImageExtension(it.key().toStdString()))
            QTest::newRow(qPrintable(it.key())) << it.key() << it.value();
    }
}

void TestHealthCheck::kindsMatchTheCorpus()
{
    QFETCH(QString, name);
    QFETCH(QStringList, kinds);
    const bool loads = pilLoads(QStringLiteral("split/") + name);
    QSet<int> expected;
    for (const QString &kind : std::as_const(kinds))
        expected.insert(int(kindFromName(kind)));
    QSet<int> found;
    for (const HealthFinding &finding : std::as_const(m_report.findings)) {
        if (findingName(finding) != name)
            continue;
        found.insert(int(finding.kind));
        // Errors only for what PIL fails on, and the severity each kind calls for.
        switch (finding.kind) {
        case Kind::ZeroByte:
        case Kind::Unreadable:
            QCOMPARE(finding.severity, Severity::Error);
            break;
        case Kind::Truncated:
        case Kind::HugeDimensions:
            QCOMPARE(finding.severity, loads ? Severity::Warning : Severity::Error);
            break;
        case Kind::TinyDimensions:
        case Kind::UnusualMode:
        case Kind::Duplicate:
            QCOMPARE(finding.severity, Severity::Warning);
            break;
        case Kind::WrongExtension:
            QCOMPARE(finding.severity, Severity::Info);
            break;
        case Kind::NearDuplicate:
            QFAIL("near-duplicates are looked for only when asked");
            break;
        }
    }
    QCOMPARE(found, expected);
}

void TestHealthCheck::duplicatesPointAtTheFirstCopy()
{
    QMap<QString, QString> duplicates;
    for (const HealthFinding &finding : std::as_const(m_report.findings)) {
        if (finding.kind == Kind::Duplicate) {
            duplicates.insert(findingName(finding), finding.duplicateOf);
            QVERIFY(finding.message.contains(finding.duplicateOf));
        } else {
            QVERIFY(finding.duplicateOf.isEmpty());
        }
    }
    const QMap<QString, QString> expected = {
        {QStringLiteral("train/odd/dup_b.png"), QStringLiteral("train/odd/dup_a.png")},
        {QStringLiteral("val/odd/dup_b.png"), QStringLiteral("val/odd/dup_a.png")},
        {QStringLiteral("val/normal/leaked.jpg"), QStringLiteral("train/normal/rgb.jpg")},
    };
    QCOMPARE(duplicates, expected);
    // The planted pair really is byte-identical, and same-size files that differ (rgb.bmp and
    // rgb_b.bmp) are not reported.
    QCOMPARE(readAll(m_split + QStringLiteral("/val/normal/leaked.jpg")),
             readAll(m_split + QStringLiteral("/train/normal/rgb.jpg")));
    QCOMPARE(QFileInfo(m_split + QStringLiteral("/train/normal/rgb.bmp")).size(),
             QFileInfo(m_split + QStringLiteral("/train/normal/rgb_b.bmp")).size());
}

void TestHealthCheck::messagesNameTheFile()
{
    QVERIFY(!m_report.findings.isEmpty());
    for (const HealthFinding &finding : std::as_const(m_report.findings)) {
        const QString name = findingName(finding);
        QVERIFY2(finding.message.contains(u'“' + name + u'”'), qPrintable(finding.message));
        QVERIFY2(finding.message.endsWith(u'.'), qPrintable(finding.message));
        QVERIFY(QFileInfo::exists(finding.absolutePath));
        QVERIFY(finding.absolutePath.endsWith(finding.relativePath));
    }
}

void TestHealthCheck::totals()
{
    QCOMPARE(m_report.filesChecked, m_scanned->sampleCount());
    QVERIFY(!m_report.cancelled);
    QVERIFY(m_report.seconds > 0);
    int64_t bytes = 0;
    for (const ImageFolderIndex &index : m_scanned->indexes) {
        for (const Sample &sample : index.samples)
            bytes += QFileInfo(index.absolutePath(sample)).size();
    }
    QCOMPARE(m_report.bytesRead, bytes);
    int errors = 0, warnings = 0;
    for (const HealthFinding &finding : std::as_const(m_report.findings)) {
        errors += finding.severity == Severity::Error;
        warnings += finding.severity == Severity::Warning;
    }
    QCOMPARE(m_report.errorCount(), errors);
    QCOMPARE(m_report.warningCount(), warnings);
    int pilFailures = 0;
    for (auto it = m_oracle.cbegin(); it != m_oracle.cend(); ++it) {
        pilFailures += it.key().startsWith(u"split/") && hasImageExtension(it.key().toStdString())
            && !it->value(u"ok").toBool();
    }
    QCOMPARE(errors, pilFailures);
}

void TestHealthCheck::oneThreadGivesTheSameReport()
{
    HealthOptions options;
    options.threads = 1;
    const HealthReport serial = checkHealth(m_scanned->targets, options);
    options.threads = 5;
    const HealthReport parallel = checkHealth(m_scanned->targets, options);
    for (const HealthReport *report : {&serial, &parallel}) {
        QCOMPARE(report->findings.size(), m_report.findings.size());
        for (qsizetype i = 0; i < report->findings.size(); ++i) {
            const HealthFinding &a = report->findings[i];
            const HealthFinding &b = m_report.findings[i];
            QCOMPARE(findingName(a), findingName(b));
            QCOMPARE(a.kind, b.kind);
            QCOMPARE(a.severity, b.severity);
            QCOMPARE(a.message, b.message);
            QCOMPARE(a.duplicateOf, b.duplicateOf);
        }
    }
}

void TestHealthCheck::plainRoot()
{
    Scanned flat(m_flat);
    QVERIFY(!flat.layout.hasSplits());
    const HealthReport report = checkHealth(flat.targets);
    QCOMPARE(report.filesChecked, flat.sampleCount());
    bool sawDuplicate = false;
    for (const HealthFinding &finding : report.findings) {
        QVERIFY(finding.split.isEmpty());
        QVERIFY2(finding.message.contains(u'“' + finding.relativePath + u'”'),
                 qPrintable(finding.message));
        const bool pilFails = !pilLoads(QStringLiteral("flat/") + finding.relativePath);
        if (finding.severity == Severity::Error)
            QVERIFY2(pilFails, qPrintable(finding.message));
        if (finding.kind == Kind::Duplicate) {
            QCOMPARE(finding.relativePath, QStringLiteral("odd/dup_b.png"));
            QCOMPARE(finding.duplicateOf, QStringLiteral("odd/dup_a.png"));
            sawDuplicate = true;
        }
    }
    QVERIFY(sawDuplicate);
    QCOMPARE(report.errorCount(), m_report.errorCount() / 2);
}

void TestHealthCheck::grayDatasetIsNotUnusual()
{
    // MNIST-like: gray is what the dataset is, not an oddity; a 16-bit file still is one.
    const QString root = pathIn(QStringLiteral("graydata"));
    QVERIFY(QDir().mkpath(root + QStringLiteral("/0"))
            && QDir().mkpath(root + QStringLiteral("/1")));
    for (int i = 0; i < 6; ++i) {
        QImage gray(28, 28, QImage::Format_Grayscale8);
        gray.fill(i * 40);
        QVERIFY(gray.save(root + QStringLiteral("/%1/g%2.png").arg(i % 2).arg(i)));
    }
    QImage colour(28, 28, QImage::Format_RGB888);
    colour.fill(Qt::red);
    QVERIFY(colour.save(root + QStringLiteral("/1/colour.png")));
    QVERIFY(QFile::copy(m_split + QStringLiteral("/train/odd/gray16.png"),
                        root + QStringLiteral("/0/deep.png")));
    Scanned scanned(root);
    const HealthReport report = checkHealth(scanned.targets);
    QCOMPARE(report.filesChecked, 8);
    QCOMPARE(report.findings.size(), 1);
    QCOMPARE(report.findings[0].relativePath, QStringLiteral("0/deep.png"));
    QCOMPARE(report.findings[0].kind, Kind::UnusualMode);
}

void TestHealthCheck::hugeButLoadableIsAWarning()
{
    const QJsonObject pil = m_oracle.value(QStringLiteral("large/big/large.png"));
    QVERIFY(pil[u"ok"].toBool());
    QVERIFY(pil[u"warnings"].toArray().contains(QStringLiteral("DecompressionBombWarning")));
    Scanned scanned(pathIn(QStringLiteral("large")));
    const HealthReport report = checkHealth(scanned.targets);
    QCOMPARE(report.filesChecked, 1);
    QCOMPARE(report.findings.size(), 1);
    QCOMPARE(report.findings[0].kind, Kind::HugeDimensions);
    QCOMPARE(report.findings[0].severity, Severity::Warning);
    QVERIFY(report.findings[0].message.contains(QStringLiteral("9500 × 9500")));
}

void TestHealthCheck::beyondTwicePilsLimitIsAnError()
{
    // PIL's two thresholds: above MAX_IMAGE_PIXELS a warning (hugeButLoadableIsAWarning), above
    // twice it DecompressionBombError, which torchvision's loader raises: an error for check,
    // and a load failure for the loader, refused from the header without decoding.
    const QJsonObject pil = m_oracle.value(QStringLiteral("bomb/big/bomb.png"));
    QVERIFY(!pil[u"ok"].toBool());
    QCOMPARE(pil[u"error_type"].toString(), QStringLiteral("DecompressionBombError"));
    Scanned scanned(pathIn(QStringLiteral("bomb")));
    const HealthReport report = checkHealth(scanned.targets);
    QCOMPARE(report.filesChecked, 1);
    QCOMPARE(report.findings.size(), 1);
    QCOMPARE(report.findings[0].kind, Kind::HugeDimensions);
    QCOMPARE(report.findings[0].severity, Severity::Error);
    QVERIFY2(report.findings[0].message.contains(QStringLiteral("14351 × 12471")),
             qPrintable(report.findings[0].message));
    const Result<QImage> loaded = loadImageRgb(pathIn(QStringLiteral("bomb/big/bomb.png")));
    QVERIFY(!loaded.ok());
    QVERIFY2(loaded.errorMessage().contains(QStringLiteral("decompression-bomb")),
             qPrintable(loaded.errorMessage()));
}

void TestHealthCheck::cutsAgreeWithPil()
{
    ImageChecker checker;
    int disagreements = 0;
    for (const QString &relative : std::as_const(m_cuts)) {
        const ImageCheck check = checker.check(pathIn(relative), relative);
        const bool ours = check.status == ImageCheck::Status::Ok;
        if (ours != pilLoads(relative)) {
            qWarning() << relative << "PIL loads:" << pilLoads(relative)
                       << "ours:" << check.message;
            ++disagreements;
        }
    }
    QVERIFY(m_cuts.size() > 500);
    QCOMPARE(disagreements, 0);
}

void TestHealthCheck::corruptionsAgreeWithPil()
{
    ImageChecker checker;
    int disagreements = 0;
    for (const QString &relative : std::as_const(m_corruptions)) {
        const ImageCheck check = checker.check(pathIn(relative), relative);
        const bool ours = check.status == ImageCheck::Status::Ok;
        if (ours != pilLoads(relative)) {
            qWarning() << relative << "PIL loads:" << pilLoads(relative)
                       << m_oracle.value(relative)[u"error"].toString() << "ours:" << check.message;
            ++disagreements;
        }
    }
    QCOMPARE(disagreements, 0);
}

void TestHealthCheck::jpegWithDamagedEndMarker()
{
    // A baseline JPEG whose EOI marker is damaged has no marker after its scan data. libjpeg then
    // needs to read past the end for its last rows, unless its bit buffer happens to hold enough
    // bits already: whether PIL loads it depends on Huffman code lengths near the end, which only
    // a full entropy decode could tell. We call it truncated; for this file PIL disagrees.
    const QString relative = QStringLiteral("damaged/normal/rgb_damaged_eoi.jpg");
    const bool pilLoadsIt = pilLoads(relative);
    ImageChecker checker;
    const ImageCheck check = checker.check(pathIn(relative), relative);
    QCOMPARE(check.status, ImageCheck::Status::Truncated);
    QEXPECT_FAIL("", "PIL's verdict depends on libjpeg's bit-buffer fill timing", Continue);
    QCOMPARE(pilLoadsIt, false);
}

void TestHealthCheck::progressAndCancel()
{
    const QString root = pathIn(QStringLiteral("many"));
    QVERIFY(QDir().mkpath(root + QStringLiteral("/c")));
    const QByteArray png = readAll(m_split + QStringLiteral("/train/normal/rgb.png"));
    for (int i = 0; i < 300; ++i)
        QVERIFY(test::writeFile(root + QStringLiteral("/c/%1.png").arg(i, 3, 10, QLatin1Char('0')),
                                png));
    Scanned scanned(root);

    // Progress: starts at 0, ends at the total, and is not called for every file.
    QMutex mutex;
    QList<int64_t> calls;
    bool totalsRight = true;
    HealthOptions options;
    options.threads = 3;
    HealthReport report = checkHealth(scanned.targets, options, [&](int64_t done, int64_t total) {
        QMutexLocker lock(&mutex);
        totalsRight = totalsRight && total == 300;
        calls += done;
    });
    QVERIFY(totalsRight);
    QCOMPARE(report.filesChecked, 300);
    QCOMPARE(calls.constFirst(), 0);
    QCOMPARE(*std::max_element(calls.cbegin(), calls.cend()), 300);
    QVERIFY(calls.size() <= 300 / 64 + 2);
    QCOMPARE(report.findings.size(), 299); // all duplicates of the first

    // Cancel from the progress callback: it stops within a few files.
    std::atomic_bool cancel{false};
    report = checkHealth(
        scanned.targets, options,
        [&](int64_t done, int64_t) {
            if (done >= 64)
                cancel = true;
        },
        &cancel);
    QVERIFY(report.cancelled);
    QVERIFY2(report.filesChecked >= 64 && report.filesChecked <= 64 + 2 * options.threads,
             qPrintable(QString::number(report.filesChecked)));
}

void TestHealthCheck::undecodableNamesAreCheckedByTheirBytes()
{
    // Names that are not valid UTF-8: every file opens by its bytes (no false "cannot read"),
    // duplicates are found among them, and the findings name them exactly.
    QTemporaryDir tmp;
    const auto cleanup = qScopeGuard([&] { test::removeTree(tmp.path()); });
    const QByteArray png = readAll(m_split + QStringLiteral("/train/normal/rgb.png"));
    QVERIFY(!png.isEmpty());
    QVERIFY(test::writeFile(tmp.path() + u'/' + decodeFileName("a\xff/1\xfe.png"), png));
    QVERIFY(test::writeFile(tmp.path() + u'/' + decodeFileName("a\xff/2\xc3.png"), png));
    QVERIFY(test::writeFile(tmp.path() + u'/' + decodeFileName("b/\x80.png"), QByteArray()));
    Scanned scanned(tmp.path());
    const HealthReport report = checkHealth(scanned.targets);
    QCOMPARE(report.filesChecked, 3);
    QCOMPARE(report.findings.size(), 2);
    for (const HealthFinding &finding : report.findings) {
        if (finding.kind == Kind::Duplicate) {
            QCOMPARE(finding.relativePath, decodeFileName("a\xff/2\xc3.png"));
            QCOMPARE(finding.duplicateOf, decodeFileName("a\xff/1\xfe.png"));
        } else {
            QCOMPARE(finding.kind, Kind::ZeroByte);
            QCOMPARE(finding.relativePath, decodeFileName("b/\x80.png"));
            QVERIFY(finding.message.contains(finding.relativePath));
        }
    }
}

void TestHealthCheck::cliJson()
{
    const test::ProcessResult run
        = test::runCli({QStringLiteral("check"), m_split, QStringLiteral("--json")});
    QVERIFY2(!run.crashed, run.err.constData());
    QCOMPARE(run.exitCode, 1); // there are errors
    QJsonParseError error;
    const QJsonDocument document = QJsonDocument::fromJson(run.out, &error);
    QVERIFY2(document.isObject(),
             qPrintable(error.errorString() + u' ' + QString::fromUtf8(run.out.left(300))));
    const QJsonObject root = document.object();
    QCOMPARE(QDir::cleanPath(root[u"root"].toString()), QDir::cleanPath(m_split));
    QCOMPARE(root[u"files_checked"].toInteger(), m_scanned->sampleCount());
    QVERIFY(root[u"seconds"].isDouble());
    const QJsonArray findings = root[u"findings"].toArray();
    QCOMPARE(findings.size(), m_report.findings.size());
    bool sawTruncated = false, sawLeak = false;
    for (const QJsonValue &finding : findings) {
        if (finding[u"path"].toString() == u"broken/truncated.jpg"
            && finding[u"split"].toString() == u"train") {
            QCOMPARE(finding[u"kind"].toString(), QStringLiteral("truncated"));
            QCOMPARE(finding[u"severity"].toString(), QStringLiteral("error"));
            QVERIFY(finding[u"duplicate_of"].isNull());
            sawTruncated = true;
        }
        if (finding[u"path"].toString() == u"normal/leaked.jpg") {
            QCOMPARE(finding[u"kind"].toString(), QStringLiteral("duplicate"));
            QCOMPARE(finding[u"split"].toString(), QStringLiteral("val"));
            QCOMPARE(finding[u"duplicate_of"].toString(), QStringLiteral("train/normal/rgb.jpg"));
            sawLeak = true;
        }
    }
    QVERIFY(sawTruncated && sawLeak);
}

void TestHealthCheck::cliHuman()
{
    const test::ProcessResult run = test::runCli({QStringLiteral("check"), m_split});
    QVERIFY2(!run.crashed, run.err.constData());
    QCOMPARE(run.exitCode, 1);
    const QString out = QString::fromUtf8(run.out);
    QVERIFY2(out.contains(QStringLiteral("%1 files checked").arg(m_scanned->sampleCount())),
             qPrintable(out.left(500)));
    QVERIFY(out.contains(QStringLiteral("%1 errors").arg(m_report.errorCount())));
    QVERIFY(out.contains(u"truncated "));
    QVERIFY(out.contains(u"error: “train/broken/truncated.jpg” is truncated"));
    QVERIFY(out.contains(u"info: “val/odd/png_named.jpg” is a PNG image"));
}

void TestHealthCheck::cliExitCodes()
{
    // A clean dataset: exit 0.
    const QString clean = pathIn(QStringLiteral("clean"));
    for (const QString &name : {QStringLiteral("rgb.png"), QStringLiteral("rgb.jpg")}) {
        QVERIFY(test::writeFile(clean + QStringLiteral("/a/") + name,
                                readAll(m_split + QStringLiteral("/train/normal/") + name)));
    }
    test::ProcessResult run = test::runCli({QStringLiteral("check"), clean});
    QCOMPARE(run.exitCode, 0);
    run = test::runCli({QStringLiteral("check"), clean, QStringLiteral("--json")});
    QCOMPARE(run.exitCode, 0);
    QCOMPARE(QJsonDocument::fromJson(run.out)[u"findings"].toArray().size(), 0);
    // Usage errors: 2, with the reason on stderr.
    run = test::runCli({QStringLiteral("check")});
    QCOMPARE(run.exitCode, 2);
    QVERIFY(run.out.isEmpty() && !run.err.isEmpty());
    run = test::runCli({QStringLiteral("check"), clean, QStringLiteral("--bogus")});
    QCOMPARE(run.exitCode, 2);
    // A missing folder: 1.
    run = test::runCli({QStringLiteral("check"), pathIn(QStringLiteral("nothing-here"))});
    QCOMPARE(run.exitCode, 1);
    QVERIFY(run.err.contains("nothing-here"));
}

QTEST_GUILESS_MAIN(TestHealthCheck)
#include "tst_healthcheck.moc"
