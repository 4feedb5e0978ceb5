// probeImage() and loadImageRgb() against PIL (Pillow 9.4, /usr/bin/python3) on a hostile corpus
// of real images: header facts must match Image.open(), pixels must match
// Image.open(f).convert("RGB") (torchvision's loader), and failures must match PIL's.
#include "image/imageprobe.h"

#include "testutil.h"

#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRandomGenerator>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <thread>

using namespace ifs;

Q_DECLARE_METATYPE(ifs::PixelMode)

namespace {

/// The PixelModes that stand for a PIL mode (PIL says "RGB" for 16-bit colour PNGs too).
QList<PixelMode> modesFor(const QString &pilMode)
{
    if (pilMode == u"1" || pilMode == u"L")
        return {PixelMode::Gray};
    if (pilMode == u"LA")
        return {PixelMode::GrayAlpha};
    if (pilMode == u"I" || pilMode == u"I;16")
        return {PixelMode::Gray16};
    if (pilMode == u"RGB")
        return {PixelMode::RGB, PixelMode::RGB16};
    if (pilMode == u"RGBA")
        return {PixelMode::RGBA, PixelMode::RGB16};
    if (pilMode == u"P")
        return {PixelMode::Palette};
    if (pilMode == u"CMYK")
        return {PixelMode::CMYK, PixelMode::YCCK};
    return {};
}

/// Largest per-channel difference between an RGB888 image and raw RGB bytes.
int maxDifference(const QImage &image, const QByteArray &rgb)
{
    int worst = 0;
    const qsizetype rowBytes = qsizetype(image.width()) * 3;
    for (int y = 0; y < image.height(); ++y) {
        const uchar *ours = image.constScanLine(y);
        const auto *theirs = reinterpret_cast<const uchar *>(rgb.constData() + y * rowBytes);
        for (qsizetype i = 0; i < rowBytes; ++i)
            worst = std::max(worst, std::abs(int(ours[i]) - int(theirs[i])));
    }
    return worst;
}

double meanDifference(const QImage &a, const QImage &b)
{
    double sum = 0;
    for (int y = 0; y < a.height(); ++y) {
        const uchar *pa = a.constScanLine(y);
        const uchar *pb = b.constScanLine(y);
        for (int i = 0; i < a.width() * 3; ++i)
            sum += std::abs(int(pa[i]) - int(pb[i]));
    }
    return sum / (double(a.width()) * a.height() * 3);
}

template<qsizetype N>
QByteArray bytes(const char (&literal)[N])
{
    return QByteArray(literal, N - 1);
}

/// The pixels without the scanline padding (which QImage leaves uninitialised).
QByteArray pixelsOf(const Result<QImage> &image)
{
    if (!image.ok())
        return image.errorMessage().toUtf8();
    QByteArray pixels;
    for (int y = 0; y < image->height(); ++y)
        pixels.append(reinterpret_cast<const char *>(image->constScanLine(y)), image->width() * 3);
    return pixels;
}

QByteArray readAll(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

} // namespace

class TestImageProbe : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void probeMatchesPil_data();
    void probeMatchesPil();
    void probeDetails_data();
    void probeDetails();
    void probeFailures_data();
    void probeFailures();
    void ycckFromAdobeMarker();

    void loadMatchesPil_data();
    void loadMatchesPil();
    void loadFailsWherePilFails_data();
    void loadFailsWherePilFails();
    void sixteenBitGrayIsClippedLikePil();
    void bombIsRefusedWithoutDecoding();
    void thumbnails_data();
    void thumbnails();
    void unicodePathsAndMissingFiles();

    void hostileBytesAreSurvived();
    void concurrentLoadsAgree();

private:
    QString corpusPath(const QString &relative) const { return m_corpus + u'/' + relative; }

    QTemporaryDir m_dir;
    QString m_corpus;
    QString m_dump;
    QMap<QString, QJsonObject> m_oracle; ///< relative path -> what PIL said
};

void TestImageProbe::initTestCase()
{
    QVERIFY(m_dir.isValid());
    m_corpus = m_dir.filePath(QStringLiteral("corpus"));
    m_dump = m_dir.filePath(QStringLiteral("dump"));
    const test::ProcessResult made
        = test::runOracle(QStringLiteral("make_hostile_corpus.py"), {m_corpus});
    QVERIFY2(made.exitCode == 0 && !made.crashed, made.err.constData());
    const test::ProcessResult oracle = test::runOracle(
        QStringLiteral("health_pil_oracle.py"), {m_corpus, QStringLiteral("--dump"), m_dump});
    QVERIFY2(oracle.exitCode == 0 && !oracle.crashed, oracle.err.constData());
    const QJsonArray files = QJsonDocument::fromJson(oracle.out).object().value(u"files").toArray();
    for (const QJsonValue &file : files)
        m_oracle.insert(file[u"path"].toString(), file.toObject());
    QVERIFY2(m_oracle.size() > 40, "the corpus is smaller than expected");
}

void TestImageProbe::probeMatchesPil_data()
{
    QTest::addColumn<QString>("relative");
    for (auto it = m_oracle.cbegin(); it != m_oracle.cend(); ++it)
        QTest::newRow(qPrintable(it.key())) << it.key();
}

void TestImageProbe::probeMatchesPil()
{
    QFETCH(QString, relative);
    const QJsonObject pil = m_oracle.value(relative);
    const Result<ImageHeader> header = probeImage(corpusPath(relative));
    const bool pilOpened = pil.contains(u"format");
    if (pil[u"error_type"].toString() == u"DecompressionBombError") {
        // Image.open() refuses it for its size alone: the header is fine and says how big.
        QVERIFY2(header.ok(), qPrintable(header.errorMessage()));
        QVERIFY(header->pixelCount() > 2 * kPilMaxImagePixels);
        return;
    }
    if (pil[u"error_type"].toString() == u"UnidentifiedImageError") {
        // PIL cannot even identify it: neither can we, and we say which file.
        QVERIFY2(!header.ok(), qPrintable(relative));
        QVERIFY2(header.errorMessage().contains(QFileInfo(relative).fileName()),
                 qPrintable(header.errorMessage()));
        return;
    }
    if (!pilOpened)
        return; // PIL decodes some formats (WebP) or reads on (JPEG) in open(): the loader test
                // checks that we fail on these too.
    QVERIFY2(header.ok(), qPrintable(header.errorMessage()));
    QCOMPARE(header->format, pil[u"format"].toString());
    const QJsonArray size = pil[u"size"].toArray();
    QCOMPARE(header->size, QSize(size[0].toInt(), size[1].toInt()));
    const QString pilMode = pil[u"mode"].toString();
    QVERIFY2(
        modesFor(pilMode).contains(header->mode),
        qPrintable(
            QStringLiteral("PIL says %1, we say %2").arg(pilMode, pixelModeName(header->mode))));
    QCOMPARE(header->exifOrientation, pil[u"orientation"].toInt());
    QCOMPARE(header->fileSize, QFileInfo(corpusPath(relative)).size());
}

void TestImageProbe::probeDetails_data()
{
    QTest::addColumn<QString>("relative");
    QTest::addColumn<PixelMode>("mode");
    QTest::addColumn<int>("bitDepth");
    QTest::addColumn<bool>("hasAlpha");
    QTest::addColumn<int>("orientation");

    QTest::newRow("jpeg") << "normal/rgb.jpg" << PixelMode::RGB << 8 << false << 1;
    QTest::newRow("exif little-endian")
        << "normal/exif_rot6_le.jpg" << PixelMode::RGB << 8 << false << 6;
    QTest::newRow("exif big-endian")
        << "normal/exif_rot8_be.jpg" << PixelMode::RGB << 8 << false << 8;
    QTest::newRow("gray jpeg") << "odd/gray.jpg" << PixelMode::Gray << 8 << false << 1;
    QTest::newRow("cmyk jpeg") << "odd/cmyk.jpg" << PixelMode::CMYK << 8 << false << 1;
    QTest::newRow("1-bit png") << "odd/bilevel.png" << PixelMode::Gray << 1 << false << 1;
    QTest::newRow("16-bit gray png") << "odd/gray16.png" << PixelMode::Gray16 << 16 << false << 1;
    QTest::newRow("16-bit rgb png") << "odd/rgb16.png" << PixelMode::RGB16 << 16 << false << 1;
    QTest::newRow("16-bit pgm") << "odd/gray16.pgm" << PixelMode::Gray16 << 16 << false << 1;
    QTest::newRow("palette png") << "odd/palette.png" << PixelMode::Palette << 4 << false << 1;
    QTest::newRow("palette png, tRNS")
        << "odd/palette_trns.png" << PixelMode::Palette << 4 << true << 1;
    QTest::newRow("rgba png") << "odd/rgba.png" << PixelMode::RGBA << 8 << true << 1;
    QTest::newRow("la png") << "odd/gray_alpha.png" << PixelMode::GrayAlpha << 8 << true << 1;
    QTest::newRow("rgba webp (VP8X)") << "odd/rgba.webp" << PixelMode::RGBA << 8 << true << 1;
    QTest::newRow("lossy webp (VP8)") << "normal/rgb.webp" << PixelMode::RGB << 8 << false << 1;
    QTest::newRow("lossless webp (VP8L)")
        << "normal/rgb_lossless.webp" << PixelMode::RGB << 8 << false << 1;
    QTest::newRow("palette bmp") << "odd/palette.bmp" << PixelMode::Palette << 8 << false << 1;
    QTest::newRow("24-bit bmp") << "normal/rgb.bmp" << PixelMode::RGB << 24 << false << 1;
    QTest::newRow("gif") << "odd/palette.gif" << PixelMode::Palette << 8 << false << 1;
    QTest::newRow("tiff") << "normal/rgb.tif" << PixelMode::RGB << 8 << false << 1;
    QTest::newRow("png named .jpg") << "odd/png_named.jpg" << PixelMode::RGB << 8 << false << 1;
}

void TestImageProbe::probeDetails()
{
    QFETCH(QString, relative);
    QFETCH(PixelMode, mode);
    QFETCH(int, bitDepth);
    QFETCH(bool, hasAlpha);
    QFETCH(int, orientation);
    const Result<ImageHeader> header = probeImage(corpusPath(relative));
    QVERIFY2(header.ok(), qPrintable(header.errorMessage()));
    QCOMPARE(pixelModeName(header->mode), pixelModeName(mode));
    QCOMPARE(header->mode, mode);
    QCOMPARE(header->bitDepth, bitDepth);
    QCOMPARE(header->hasAlpha, hasAlpha);
    QCOMPARE(header->exifOrientation, orientation);
}

void TestImageProbe::probeFailures_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("expected");

    QTest::newRow("empty") << QByteArray() << QStringLiteral("“cat/x.jpg” is empty (0 bytes)");
    QTest::newRow("text") << QByteArray("hello there\n")
                          << QStringLiteral("“cat/x.jpg” is not an image: it starts with text");
    QTest::newRow("html") << QByteArray("<!DOCTYPE html><html><body>404</body></html>")
                          << QStringLiteral("“cat/x.jpg” is not an image: it is an HTML page");
    QTest::newRow("binary") << bytes("\x01\x02\x03\x04\x00\xff")
                            << QStringLiteral(
                                   "“cat/x.jpg” is not an image: its first bytes (01 02 03 04");
    QTest::newRow("jpeg signature only")
        << bytes("\xff\xd8\xff") << QStringLiteral("“cat/x.jpg” is truncated");
    QTest::newRow("12-bit jpeg") << bytes(
        "\xff\xd8\xff\xc0\x00\x11\x0c\x00\x10\x00\x10\x03\x01\x11\x00\x02\x11\x01"
        "\x03\x11\x01\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\xff\xd9")
                                 << QStringLiteral(
                                        "“cat/x.jpg” cannot be read: it is a 12-bit JPEG");
    QByteArray badCrc = readAll(corpusPath(QStringLiteral("normal/rgb.png")));
    badCrc[29] = char(badCrc[29] ^ 0x55);
    QTest::newRow("png, bad IHDR checksum") << badCrc << QStringLiteral("bad IHDR checksum");
    QTest::newRow("png, no IHDR") << bytes("\x89PNG\r\n\x1a\n\0\0\0\0IEND\xae\x42\x60\x82")
                                  << QStringLiteral("“cat/x.jpg” is truncated");
}

void TestImageProbe::probeFailures()
{
    QFETCH(QByteArray, bytes);
    QFETCH(QString, expected);
    const QString path = m_dir.filePath(QStringLiteral("failures/cat/x.jpg"));
    QVERIFY(test::writeFile(path, bytes));
    const Result<ImageHeader> header = probeImage(path);
    QVERIFY(!header.ok());
    QVERIFY2(header.errorMessage().startsWith(expected) || header.errorMessage().contains(expected),
             qPrintable(header.errorMessage()));
    const Result<QImage> image = loadImageRgb(path);
    QVERIFY(!image.ok());
    QVERIFY2(image.errorMessage().contains(u"cat/x.jpg"), qPrintable(image.errorMessage()));
}

void TestImageProbe::ycckFromAdobeMarker()
{
    // Adobe's APP14 transform flag 2 marks YCCK; PIL still calls the mode "CMYK".
    QByteArray bytes = readAll(corpusPath(QStringLiteral("odd/cmyk.jpg")));
    const qsizetype adobe = bytes.indexOf("Adobe");
    QVERIFY(adobe > 0);
    bytes[adobe + 11] = 2;
    const QString path = m_dir.filePath(QStringLiteral("ycck/x.jpg"));
    QVERIFY(test::writeFile(path, bytes));
    const Result<ImageHeader> header = probeImage(path);
    QVERIFY2(header.ok(), qPrintable(header.errorMessage()));
    QCOMPARE(header->mode, PixelMode::YCCK);
    QCOMPARE(pixelModeName(header->mode), QStringLiteral("CMYK"));
}

void TestImageProbe::loadMatchesPil_data()
{
    QTest::addColumn<QString>("relative");
    QTest::addColumn<int>("tolerance");
    for (auto it = m_oracle.cbegin(); it != m_oracle.cend(); ++it) {
        if (!it->value(u"ok").toBool())
            continue;
        // Qt's CMYK conversion rounds down where PIL rounds to nearest (one level at most).
        const int tolerance = it->value(u"mode").toString() == u"CMYK" ? 1 : 0;
        QTest::newRow(qPrintable(it.key())) << it.key() << tolerance;
    }
}

void TestImageProbe::loadMatchesPil()
{
    QFETCH(QString, relative);
    QFETCH(int, tolerance);
    const QJsonObject pil = m_oracle.value(relative);
    const Result<QImage> image = loadImageRgb(corpusPath(relative));
    QVERIFY2(image.ok(), qPrintable(image.errorMessage()));
    QCOMPARE(image->format(), QImage::Format_RGB888);
    const QJsonArray size = pil[u"size"].toArray();
    QCOMPARE(image->size(), QSize(size[0].toInt(), size[1].toInt()));
    const QByteArray rgb = readAll(m_dump + u'/' + pil[u"dump"].toString());
    QCOMPARE(rgb.size(), qsizetype(image->width()) * image->height() * 3);
    const int difference = maxDifference(image.value(), rgb);
    QVERIFY2(difference <= tolerance,
             qPrintable(QStringLiteral("pixels differ from PIL's by up to %1").arg(difference)));
}

void TestImageProbe::loadFailsWherePilFails_data()
{
    QTest::addColumn<QString>("relative");
    for (auto it = m_oracle.cbegin(); it != m_oracle.cend(); ++it) {
        if (!it->value(u"ok").toBool())
            QTest::newRow(qPrintable(it.key())) << it.key();
    }
}

void TestImageProbe::loadFailsWherePilFails()
{
    QFETCH(QString, relative);
    const Result<QImage> image = loadImageRgb(corpusPath(relative));
    QVERIFY2(!image.ok(), "PIL fails on this file, so must we");
    QVERIFY2(image.errorMessage().contains(relative), qPrintable(image.errorMessage()));
    // Thumbnails too: a reduced decode must not hide a truncation.
    QVERIFY(!loadImageRgb(corpusPath(relative), QSize(16, 16)).ok());
}

void TestImageProbe::sixteenBitGrayIsClippedLikePil()
{
    // Written by make_hostile_corpus.py: row 0 holds x * 4096, rows 4.. hold x * 17 + y.
    const Result<QImage> image = loadImageRgb(corpusPath(QStringLiteral("odd/gray16.png")));
    QVERIFY2(image.ok(), qPrintable(image.errorMessage()));
    QCOMPARE(image->pixel(0, 0), qRgb(0, 0, 0));
    QCOMPARE(image->pixel(1, 0), qRgb(255, 255, 255)); // 4096 clips to white, not 16
    QCOMPARE(image->pixel(3, 5), qRgb(3 * 17 + 5, 3 * 17 + 5, 3 * 17 + 5));
}

void TestImageProbe::bombIsRefusedWithoutDecoding()
{
    const Result<QImage> image = loadImageRgb(corpusPath(QStringLiteral("broken/huge.png")));
    QVERIFY(!image.ok());
    QVERIFY2(image.errorMessage().contains(u"decompression-bomb"),
             qPrintable(image.errorMessage()));
    QVERIFY2(image.errorMessage().contains(u"broken/huge.png"), qPrintable(image.errorMessage()));
}

void TestImageProbe::thumbnails_data()
{
    QTest::addColumn<QString>("relative");
    QTest::addColumn<QSize>("maxSize");
    QTest::newRow("jpeg, DCT scaled") << "normal/rgb.jpg" << QSize(16, 16);
    QTest::newRow("jpeg, odd box") << "normal/rgb.jpg" << QSize(40, 10);
    QTest::newRow("progressive jpeg") << "normal/progressive.jpg" << QSize(20, 20);
    QTest::newRow("gray jpeg") << "odd/gray.jpg" << QSize(10, 10);
    QTest::newRow("cmyk jpeg") << "odd/cmyk.jpg" << QSize(16, 16);
    QTest::newRow("png") << "normal/rgb.png" << QSize(16, 16);
    QTest::newRow("16-bit png") << "odd/rgb16.png" << QSize(5, 5);
    QTest::newRow("webp") << "normal/rgb.webp" << QSize(15, 15);
    QTest::newRow("already small") << "odd/tiny.png" << QSize(16, 16);
}

void TestImageProbe::thumbnails()
{
    QFETCH(QString, relative);
    QFETCH(QSize, maxSize);
    const Result<QImage> full = loadImageRgb(corpusPath(relative));
    QVERIFY2(full.ok(), qPrintable(full.errorMessage()));
    const Result<QImage> thumb = loadImageRgb(corpusPath(relative), maxSize);
    QVERIFY2(thumb.ok(), qPrintable(thumb.errorMessage()));
    QCOMPARE(thumb->format(), QImage::Format_RGB888);
    // Fits, keeps the aspect ratio, never grows.
    const QSize expected = full->width() <= maxSize.width() && full->height() <= maxSize.height()
        ? full->size()
        : full->size().scaled(maxSize, Qt::KeepAspectRatio);
    QCOMPARE(thumb->size(), expected);
    // Looks like the full image scaled down (DCT scaling blurs a little differently).
    const QImage reference
        = full->scaled(expected, Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
    const double difference = meanDifference(thumb.value(), reference);
    QVERIFY2(difference < 12, qPrintable(QStringLiteral("mean difference %1").arg(difference)));
}

void TestImageProbe::unicodePathsAndMissingFiles()
{
    const QString relative = QStringLiteral("normal/caf\u00e9 photo.png");
    QVERIFY(QFileInfo::exists(corpusPath(relative)));
    QVERIFY(probeImage(corpusPath(relative)).ok());
    QVERIFY(loadImageRgb(corpusPath(relative)).ok());
    const Result<ImageHeader> missing = probeImage(m_dir.filePath(QStringLiteral("nope/gone.jpg")));
    QVERIFY(!missing.ok());
    QVERIFY2(missing.errorMessage().contains(u"nope/gone.jpg"), qPrintable(missing.errorMessage()));
}

void TestImageProbe::hostileBytesAreSurvived()
{
    // Cut and corrupt every readable corpus file in many places: nothing may crash, hang or read
    // out of bounds, and every failure must name the file.
    QRandomGenerator random(20261128);
    const QString path = m_dir.filePath(QStringLiteral("hostile/h/x.bin"));
    ImageChecker checker;
    int variants = 0;
    for (auto it = m_oracle.cbegin(); it != m_oracle.cend(); ++it) {
        if (!it->value(u"ok").toBool())
            continue;
        const QByteArray original = readAll(corpusPath(it.key()));
        QList<QByteArray> mutants;
        for (int cut = 1; cut < 24; ++cut)
            mutants += original.left(original.size() * cut / 24);
        for (int i = 0; i < 12; ++i) {
            QByteArray mutant = original;
            for (int flips = 0; flips < 1 + i % 3; ++flips) {
                const qsizetype at = qsizetype(random.bounded(quint32(mutant.size())));
                mutant[at] = char(random.bounded(256));
            }
            mutants += mutant;
        }
        // Header fields set to extremes: sizes, lengths, counts.
        QByteArray extreme = original;
        for (qsizetype at = 4; at < std::min<qsizetype>(extreme.size(), 40); at += 4)
            extreme[at] = char(0xff);
        mutants += extreme;
        for (const QByteArray &mutant : std::as_const(mutants)) {
            QVERIFY(test::writeFile(path, mutant));
            const Result<ImageHeader> header = probeImage(path);
            if (!header.ok())
                QVERIFY2(header.errorMessage().contains(u"h/x.bin"),
                         qPrintable(header.errorMessage()));
            const Result<QImage> image = loadImageRgb(path, QSize(8, 8));
            if (!image.ok())
                QVERIFY2(image.errorMessage().contains(u"h/x.bin"),
                         qPrintable(image.errorMessage()));
            const ImageCheck check = checker.check(path, QStringLiteral("h/x.bin"));
            QCOMPARE(checker.data().size(), mutant.size());
            if (check.status != ImageCheck::Status::Ok)
                QVERIFY2(check.message.contains(u"h/x.bin"), qPrintable(check.message));
            ++variants;
        }
    }
    QVERIFY(variants > 1000);
}

void TestImageProbe::concurrentLoadsAgree()
{
    QStringList paths;
    for (auto it = m_oracle.cbegin(); it != m_oracle.cend(); ++it)
        paths += corpusPath(it.key());
    QList<QByteArray> serial;
    for (const QString &path : std::as_const(paths)) {
        serial += pixelsOf(loadImageRgb(path, QSize(24, 24)));
    }
    // Four threads load every file six times, interleaved.
    const int threads = 4;
    const qsizetype total = paths.size() * 6;
    QList<QByteArray> parallel(total);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (qsizetype i = t; i < total; i += threads) {
                parallel[i] = pixelsOf(loadImageRgb(paths[i % paths.size()], QSize(24, 24)));
            }
        });
    }
    for (std::thread &thread : pool)
        thread.join();
    for (qsizetype i = 0; i < parallel.size(); ++i)
        QVERIFY2(parallel[i] == serial[i % serial.size()], qPrintable(paths[i % paths.size()]));
}

QTEST_GUILESS_MAIN(TestImageProbe)
#include "tst_imageprobe.moc"
