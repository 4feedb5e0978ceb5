// Fashion-MNIST export: IDX validation, the exported tree against a numpy/PIL/torchvision oracle,
// idempotence, refusal to touch user data, cancellation and the CLI.
#include "dataset/sampledata.h"
#include "testutil.h"

#include <QDateTime>
#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMap>
#include <QMutex>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>

using namespace ifs;

namespace {

/// Relative path → size and modification time of everything under `root`, hidden files included.
using Snapshot = QMap<QString, QPair<qint64, QDateTime>>;

Snapshot snapshot(const QString &root)
{
    Snapshot result;
    QDirIterator it(root, QDir::AllEntries | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot,
                    QDirIterator::Subdirectories);
    while (it.hasNext()) {
        it.next();
        const QFileInfo info = it.fileInfo();
        result.insert(QDir(root).relativeFilePath(info.filePath()),
                      {info.isDir() ? -1 : info.size(), info.lastModified()});
    }
    return result;
}

/// Sets the modification time of everything under `root` (root included) to one fixed moment in
/// the past, so that any later rewrite shows in snapshot() without waiting for the clock.
void agePastAnyRewrite(const QString &root)
{
    QDirIterator it(root, QDir::AllEntries | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot,
                    QDirIterator::Subdirectories);
    QStringList paths{root};
    while (it.hasNext())
        paths.append(it.next());
    const timespec past[2] = {{1'000'000'000, 0}, {1'000'000'000, 0}}; // atime, mtime: 2001
    for (const QString &path : std::as_const(paths))
        QVERIFY2(::utimensat(AT_FDCWD, QFile::encodeName(path).constData(), past, 0) == 0,
                 qPrintable(path));
}

/// The top-level entries of `root`, hidden ones included.
QStringList topEntries(const QString &root)
{
    return QDir(root).entryList(
        QDir::AllEntries | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot, QDir::Name);
}

int countFiles(const QString &root)
{
    int count = 0;
    QDirIterator it(root, QDir::Files | QDir::Hidden, QDirIterator::Subdirectories);
    while (it.hasNext()) {
        it.next();
        ++count;
    }
    return count;
}

QByteArray bigEndian(quint32 value)
{
    QByteArray bytes(4, '\0');
    bytes[0] = char(value >> 24);
    bytes[1] = char(value >> 16);
    bytes[2] = char(value >> 8);
    bytes[3] = char(value);
    return bytes;
}

/// An IDX image file: `count` images of rows×cols with a recognisable pattern per image.
QByteArray idxImages(quint32 count, quint32 rows = 28, quint32 cols = 28, quint32 magic = 0x803)
{
    QByteArray bytes = bigEndian(magic) + bigEndian(count) + bigEndian(rows) + bigEndian(cols);
    for (quint32 i = 0; i < count; ++i) {
        for (quint32 p = 0; p < rows * cols; ++p)
            bytes.append(char((i * 37 + p * 11 + (p / cols) * 3) & 0xff));
    }
    return bytes;
}

/// An IDX label file with labels i % 10.
QByteArray idxLabels(quint32 count, quint32 magic = 0x801)
{
    QByteArray bytes = bigEndian(magic) + bigEndian(count);
    for (quint32 i = 0; i < count; ++i)
        bytes.append(char(i % 10));
    return bytes;
}

QByteArray readAll(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

/// A small valid source of plain (uncompressed) IDX files: 30 train and 20 t10k images.
void writeSyntheticSource(const QString &dir)
{
    QVERIFY(test::writeFile(dir + u"/train-images-idx3-ubyte", idxImages(30)));
    QVERIFY(test::writeFile(dir + u"/train-labels-idx1-ubyte", idxLabels(30)));
    QVERIFY(test::writeFile(dir + u"/t10k-images-idx3-ubyte", idxImages(20)));
    QVERIFY(test::writeFile(dir + u"/t10k-labels-idx1-ubyte", idxLabels(20)));
}

/// "exit 1: <stderr>" or "crashed (exit 11): <stderr>", for failure messages.
QByteArray describe(const test::ProcessResult &run)
{
    return (run.crashed ? QByteArrayLiteral("crashed (exit ") : QByteArrayLiteral("exit "))
        + QByteArray::number(run.exitCode) + (run.crashed ? "): " : ": ") + run.err;
}

QJsonObject runVerifier(const QString &source, const QString &dest, int limit, bool imageFolder)
{
    QStringList args{QStringLiteral("--source"), source,
                     QStringLiteral("--dest"),   dest,
                     QStringLiteral("--limit"),  QString::number(limit)};
    if (imageFolder)
        args << QStringLiteral("--imagefolder");
    const test::ProcessResult run = test::runOracle(QStringLiteral("sampledata_verify.py"), args);
    if (run.exitCode != 0 || run.crashed) {
        qWarning("oracle failed: %s", run.err.constData());
        return {};
    }
    return QJsonDocument::fromJson(run.out).object();
}

enum class Corruption {
    ImagesMagic,
    LabelsMagic,
    CountMismatch,
    LabelOutOfRange,
    TruncatedImages,
    TruncatedHeader,
    EmptyFile,
    TrailingData,
    HugeHeaderCount,
    HeaderCountBeyondContent,
    MissingFile,
    TruncatedGzip,
    CorruptGzip,
};

} // namespace

Q_DECLARE_METATYPE(Corruption)

class TestSampleData : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void folderNames();
    void exportLimitedMatchesOracle();
    void exportPlainFilesMatchesOracle();
    void secondExportIsAlreadyThere();
    void refusesUserData_data();
    void refusesUserData();
    void corruptInput_data();
    void corruptInput();
    void cancel_data();
    void cancel();
    void cliExport();
    void cliMissingSource();

private:
    bool m_haveRealData = false;
};

void TestSampleData::initTestCase()
{
    m_haveRealData = missingFashionMnistFiles(defaultFashionMnistSource()).isEmpty();
    QVERIFY2(QFileInfo::exists(test::oraclePython()), "the oracle Python is missing");
}

void TestSampleData::folderNames()
{
    const QStringList folders = fashionMnistFolderNames();
    QCOMPARE(folders.size(), 10);
    QCOMPARE(folders.first(), QStringLiteral("T-shirt_top"));
    QCOMPARE(folders.last(), QStringLiteral("Ankle_boot"));
    QCOMPARE(fashionMnistLabels().first(), QStringLiteral("T-shirt/top"));
    for (const QString &folder : folders) {
        QVERIFY(!folder.contains(u'/'));
        QVERIFY(!folder.contains(u' '));
    }
    QCOMPARE(missingFashionMnistFiles(QStringLiteral("/nonexistent")), fashionMnistFileNames());
}

void TestSampleData::exportLimitedMatchesOracle()
{
    if (!m_haveRealData)
        QSKIP("Debian's dataset-fashion-mnist package is not installed");
    QTemporaryDir temp;
    QVERIFY(temp.isValid());
    const QString dest = temp.path() + u"/not/yet/there"; // created by the export

    QMutex mutex;
    int64_t maxDone = -1;
    int64_t lastTotal = -1;
    int calls = 0;
    const auto progress = [&](int64_t done, int64_t total) {
        QMutexLocker lock(&mutex);
        maxDone = std::max(maxDone, done);
        lastTotal = total;
        ++calls;
    };
    SampleDataOptions options;
    options.limitPerClass = 20;
    const Result<SampleDataResult> result = exportFashionMnist(dest, options, progress);
    QVERIFY2(result.ok(), qPrintable(result.errorMessage()));
    QVERIFY(!result->alreadyThere);
    QVERIFY(!result->cancelled);
    QCOMPARE(result->root, dest);
    QCOMPARE(result->source, QFileInfo(defaultFashionMnistSource()).canonicalFilePath());
    QCOMPARE(result->trainImages, 200);
    QCOMPARE(result->valImages, 200);
    QCOMPARE(result->imagesWritten, 400);
    QCOMPARE(lastTotal, 400);
    QCOMPARE(maxDone, 400);
    QVERIFY(calls >= 2);

    // The tree: train/ val/ and the marker, no temporary folder left.
    QCOMPARE(topEntries(dest),
             (QStringList{QStringLiteral(".ifstudio-sample.json"), QStringLiteral("train"),
                          QStringLiteral("val")}));
    const QRegularExpression fiveDigits(QStringLiteral("^\\d{5}\\.png$"));
    for (const QString &split : {QStringLiteral("train"), QStringLiteral("val")}) {
        QCOMPARE(QDir(dest + u'/' + split).entryList(QDir::Dirs | QDir::NoDotAndDotDot).size(), 10);
        for (const QString &folder : fashionMnistFolderNames()) {
            const QStringList files
                = QDir(dest + u'/' + split + u'/' + folder).entryList(QDir::Files | QDir::Hidden);
            QCOMPARE(files.size(), 20);
            for (const QString &file : files)
                QVERIFY2(fiveDigits.match(file).hasMatch(), qPrintable(file));
        }
    }
    // The first train image is label 9 (Ankle boot) in Fashion-MNIST.
    QVERIFY(QFileInfo::exists(dest + u"/train/Ankle_boot/00000.png"));

    const QJsonObject marker
        = QJsonDocument::fromJson(readAll(dest + u"/.ifstudio-sample.json")).object();
    QCOMPARE(marker.value(u"format").toString(), QStringLiteral("ifstudio-sample-data"));
    QCOMPARE(marker.value(u"limitPerClass").toInt(), 20);
    QCOMPARE(marker.value(u"images").toObject().value(u"train").toInt(), 200);
    QCOMPARE(marker.value(u"images").toObject().value(u"val").toInt(), 200);

    const QJsonObject verdict = runVerifier(defaultFashionMnistSource(), dest, 20, true);
    QVERIFY2(verdict.value(u"ok").toBool(),
             QJsonDocument(verdict.value(u"errors").toArray()).toJson().constData());
    QCOMPARE(verdict.value(u"checked").toInt(), 400);
    QStringList sortedFolders = fashionMnistFolderNames();
    sortedFolders.sort();
    for (const QString &split : {QStringLiteral("train"), QStringLiteral("val")}) {
        const QJsonObject imageFolder
            = verdict.value(u"imagefolder").toObject().value(split).toObject();
        QCOMPARE(imageFolder.value(u"count").toInt(), 200);
        QStringList classes;
        for (const QJsonValue &value : imageFolder.value(u"classes").toArray())
            classes << value.toString();
        QCOMPARE(classes, sortedFolders);
        const QJsonObject perClass = imageFolder.value(u"per_class").toObject();
        for (const QString &folder : sortedFolders)
            QCOMPARE(perClass.value(folder).toInt(), 20);
    }
}

void TestSampleData::exportPlainFilesMatchesOracle()
{
    QTemporaryDir temp;
    QVERIFY(temp.isValid());
    const QString source = temp.path() + u"/source";
    writeSyntheticSource(source);
    const QString dest = temp.path() + u"/dest";
    SampleDataOptions options;
    options.source = source;
    options.threads = 3;
    const Result<SampleDataResult> result = exportFashionMnist(dest, options);
    QVERIFY2(result.ok(), qPrintable(result.errorMessage()));
    QCOMPARE(result->trainImages, 30);
    QCOMPARE(result->valImages, 20);
    QVERIFY(QFileInfo::exists(dest + u"/train/Trouser/00021.png"));
    QVERIFY(QFileInfo::exists(dest + u"/val/T-shirt_top/00010.png"));

    const QJsonObject verdict = runVerifier(source, dest, 0, false);
    QVERIFY2(verdict.value(u"ok").toBool(),
             QJsonDocument(verdict.value(u"errors").toArray()).toJson().constData());
    QCOMPARE(verdict.value(u"checked").toInt(), 50);

    // The same source with a limit, into another folder: the first 2 of each class.
    options.limitPerClass = 2;
    const Result<SampleDataResult> limited = exportFashionMnist(temp.path() + u"/limited", options);
    QVERIFY2(limited.ok(), qPrintable(limited.errorMessage()));
    QCOMPARE(limited->trainImages, 20);
    QCOMPARE(limited->valImages, 20);
    QVERIFY(QFileInfo::exists(temp.path() + u"/limited/train/Bag/00018.png"));
    QVERIFY(!QFileInfo::exists(temp.path() + u"/limited/train/Bag/00028.png"));
    const QJsonObject limitedVerdict = runVerifier(source, temp.path() + u"/limited", 2, false);
    QVERIFY2(limitedVerdict.value(u"ok").toBool(),
             QJsonDocument(limitedVerdict.value(u"errors").toArray()).toJson().constData());
}

void TestSampleData::secondExportIsAlreadyThere()
{
    QTemporaryDir temp;
    QVERIFY(temp.isValid());
    const QString source = temp.path() + u"/source";
    writeSyntheticSource(source);
    const QString dest = temp.path() + u"/dest";
    SampleDataOptions options;
    options.source = source;
    options.limitPerClass = 2;
    const Result<SampleDataResult> first = exportFashionMnist(dest, options);
    QVERIFY2(first.ok(), qPrintable(first.errorMessage()));
    QVERIFY(!first->alreadyThere);
    // Any rewrite would show in the modification times, all set to one moment in the past.
    agePastAnyRewrite(dest);
    const Snapshot before = snapshot(dest);
    QCOMPARE(before.size(), 1 + 2 * (1 + 10 + 20)); // marker, 2 × (split, classes, images)

    bool progressCalled = false;
    const Result<SampleDataResult> second
        = exportFashionMnist(dest, options, [&](int64_t, int64_t) { progressCalled = true; });
    QVERIFY2(second.ok(), qPrintable(second.errorMessage()));
    QVERIFY(second->alreadyThere);
    QCOMPARE(second->imagesWritten, 0);
    QCOMPARE(second->trainImages, 20);
    QCOMPARE(second->valImages, 20);
    QVERIFY(!progressCalled);
    QCOMPARE(snapshot(dest), before);

    // The same source through a different spelling is the same source.
    options.source = source + u"/./";
    const Result<SampleDataResult> third = exportFashionMnist(dest + u'/', options);
    QVERIFY2(third.ok(), qPrintable(third.errorMessage()));
    QVERIFY(third->alreadyThere);

    // Other options: refused, nothing touched.
    options.limitPerClass = 3;
    const Result<SampleDataResult> other = exportFashionMnist(dest, options);
    QVERIFY(!other.ok());
    QVERIFY2(other.errorMessage().contains(u"other options"), qPrintable(other.errorMessage()));
    QCOMPARE(snapshot(dest), before);

    // An export a user changed is not "already there", and it is not overwritten either.
    options.limitPerClass = 2;
    QVERIFY(QFile::remove(dest + u"/val/Bag/00008.png"));
    const Snapshot changed = snapshot(dest);
    const Result<SampleDataResult> incomplete = exportFashionMnist(dest, options);
    QVERIFY(!incomplete.ok());
    QVERIFY2(incomplete.errorMessage().contains(u"incomplete"),
             qPrintable(incomplete.errorMessage()));
    QCOMPARE(snapshot(dest), changed);

    // Without its trees, a marker alone is stale: a new export replaces it.
    QVERIFY(QDir(dest + u"/train").removeRecursively());
    QVERIFY(QDir(dest + u"/val").removeRecursively());
    const Result<SampleDataResult> again = exportFashionMnist(dest, options);
    QVERIFY2(again.ok(), qPrintable(again.errorMessage()));
    QVERIFY(!again->alreadyThere);
    QCOMPARE(again->imagesWritten, 40);
}

void TestSampleData::refusesUserData_data()
{
    QTest::addColumn<QStringList>("userFiles");
    QTest::addColumn<QString>("expected");
    QTest::newRow("train without marker")
        << QStringList{QStringLiteral("train/cat/1.png")} << QStringLiteral("did not write");
    QTest::newRow("val without marker")
        << QStringList{QStringLiteral("val/dog/2.png")} << QStringLiteral("did not write");
    QTest::newRow("empty train folder")
        << QStringList{QStringLiteral("train/")} << QStringLiteral("did not write");
    QTest::newRow("foreign marker")
        << QStringList{QStringLiteral("train/cat/1.png"), QStringLiteral(".ifstudio-sample.json")}
        << QStringLiteral("marker is unreadable");
    QTest::newRow("DEST is a file") << QStringList{} << QStringLiteral("not a folder");
}

void TestSampleData::refusesUserData()
{
    QFETCH(QStringList, userFiles);
    QFETCH(QString, expected);
    QTemporaryDir temp;
    QVERIFY(temp.isValid());
    const QString source = temp.path() + u"/source";
    writeSyntheticSource(source);
    QString dest = temp.path() + u"/dest";
    if (userFiles.isEmpty()) {
        QVERIFY(test::writeFile(dest, "not a folder"));
    } else {
        for (const QString &file : userFiles) {
            if (file.endsWith(u'/'))
                QVERIFY(QDir().mkpath(dest + u'/' + file));
            else
                QVERIFY(test::writeFile(dest + u'/' + file, "user data " + file.toUtf8()));
        }
    }
    const Snapshot before = snapshot(dest);
    const QByteArray destBytes = readAll(dest);

    SampleDataOptions options;
    options.source = source;
    const Result<SampleDataResult> result = exportFashionMnist(dest, options);
    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(expected), qPrintable(result.errorMessage()));
    QCOMPARE(snapshot(dest), before);
    for (const QString &file : userFiles) {
        if (!file.endsWith(u'/'))
            QCOMPARE(readAll(dest + u'/' + file), "user data " + file.toUtf8());
    }
    if (userFiles.isEmpty())
        QCOMPARE(readAll(dest), destBytes);
}

void TestSampleData::corruptInput_data()
{
    QTest::addColumn<Corruption>("corruption");
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("reason");
    QTest::newRow("images magic") << Corruption::ImagesMagic
                                  << QStringLiteral("train-images-idx3-ubyte")
                                  << QStringLiteral("not an IDX image file (magic number "
                                                    "0x00000802");
    QTest::newRow("labels magic") << Corruption::LabelsMagic
                                  << QStringLiteral("t10k-labels-idx1-ubyte")
                                  << QStringLiteral("not an IDX label file");
    QTest::newRow("count mismatch")
        << Corruption::CountMismatch << QStringLiteral("t10k-labels-idx1-ubyte")
        << QStringLiteral("holds 20 images but the labels file "
                          "holds 19");
    QTest::newRow("label out of range")
        << Corruption::LabelOutOfRange << QStringLiteral("train-labels-idx1-ubyte")
        << QStringLiteral("label 10 of item 7 is out of range");
    QTest::newRow("truncated images")
        << Corruption::TruncatedImages << QStringLiteral("train-images-idx3-ubyte")
        << QStringLiteral("truncated");
    QTest::newRow("truncated header")
        << Corruption::TruncatedHeader << QStringLiteral("t10k-images-idx3-ubyte")
        << QStringLiteral("truncated");
    QTest::newRow("empty file") << Corruption::EmptyFile
                                << QStringLiteral("train-labels-idx1-ubyte")
                                << QStringLiteral("empty");
    QTest::newRow("trailing data")
        << Corruption::TrailingData << QStringLiteral("train-images-idx3-ubyte")
        << QStringLiteral("unexpected data after the last item");
    QTest::newRow("huge header count")
        << Corruption::HugeHeaderCount << QStringLiteral("train-images-idx3-ubyte")
        << QStringLiteral("more than this reader accepts");
    QTest::newRow("header count beyond content")
        << Corruption::HeaderCountBeyondContent << QStringLiteral("train-images-idx3-ubyte")
        << QStringLiteral("truncated");
    QTest::newRow("missing file") << Corruption::MissingFile
                                  << QStringLiteral("t10k-labels-idx1-ubyte")
                                  << QStringLiteral("is missing");
    QTest::newRow("truncated gzip")
        << Corruption::TruncatedGzip << QStringLiteral("t10k-images-idx3-ubyte.gz")
        << QStringLiteral("truncated gzip data");
    QTest::newRow("corrupt gzip") << Corruption::CorruptGzip
                                  << QStringLiteral("t10k-labels-idx1-ubyte.gz")
                                  << QStringLiteral("Cannot read");
}

void TestSampleData::corruptInput()
{
    QFETCH(Corruption, corruption);
    QFETCH(QString, file);
    QFETCH(QString, reason);
    QTemporaryDir temp;
    QVERIFY(temp.isValid());
    const QString source = temp.path() + u"/source";
    writeSyntheticSource(source);
    const QString path = source + u'/' + file;
    const QString real = defaultFashionMnistSource() + u'/' + file;

    switch (corruption) {
    case Corruption::ImagesMagic:
        QVERIFY(test::writeFile(path, idxImages(30, 28, 28, 0x802)));
        break;
    case Corruption::LabelsMagic:
        QVERIFY(test::writeFile(path, idxLabels(20, 0x803)));
        break;
    case Corruption::CountMismatch:
        QVERIFY(test::writeFile(path, idxLabels(19)));
        break;
    case Corruption::LabelOutOfRange: {
        QByteArray labels = idxLabels(30);
        labels[8 + 7] = 10;
        QVERIFY(test::writeFile(path, labels));
        break;
    }
    case Corruption::TruncatedImages:
        QVERIFY(test::writeFile(path, idxImages(30).left(16 + 784 * 12 + 100)));
        break;
    case Corruption::TruncatedHeader:
        QVERIFY(test::writeFile(path, idxImages(20).left(10)));
        break;
    case Corruption::EmptyFile:
        QVERIFY(test::writeFile(path, QByteArray()));
        break;
    case Corruption::TrailingData:
        QVERIFY(test::writeFile(path, idxImages(30) + "extra"));
        break;
    case Corruption::HugeHeaderCount: {
        QByteArray images = idxImages(30);
        images.replace(4, 4, bigEndian(0xffffffffu));
        QVERIFY(test::writeFile(path, images));
        break;
    }
    case Corruption::HeaderCountBeyondContent: {
        QByteArray images = idxImages(30);
        images.replace(4, 4, bigEndian(1000));
        QVERIFY(test::writeFile(path, images));
        break;
    }
    case Corruption::MissingFile:
        QVERIFY(QFile::remove(path));
        break;
    case Corruption::TruncatedGzip:
    case Corruption::CorruptGzip: {
        if (!m_haveRealData)
            QSKIP("Debian's dataset-fashion-mnist package is not installed");
        // The gzipped file replaces the plain synthetic one of the same name.
        const QString plain = path.chopped(3);
        QVERIFY(QFile::remove(plain));
        QByteArray bytes = readAll(real);
        QVERIFY(bytes.size() > 4000);
        if (corruption == Corruption::TruncatedGzip) {
            bytes.truncate(bytes.size() / 2);
        } else {
            for (int i = 2000; i < 2064; ++i)
                bytes[i] = char(bytes[i] ^ 0x5a);
        }
        QVERIFY(test::writeFile(path, bytes));
        // The other file of the split must agree with it in count: use the real one.
        const QString partnerName = file.contains(u"images")
            ? QStringLiteral("t10k-labels-idx1-ubyte")
            : QStringLiteral("t10k-images-idx3-ubyte");
        QVERIFY(QFile::remove(source + u'/' + partnerName));
        QVERIFY(QFile::copy(defaultFashionMnistSource() + u'/' + partnerName + u".gz",
                            source + u'/' + partnerName + u".gz"));
        break;
    }
    }

    const QString dest = temp.path() + u"/dest";
    SampleDataOptions options;
    options.source = source;
    const Result<SampleDataResult> result = exportFashionMnist(dest, options);
    QVERIFY(!result.ok());
    const QString message = result.errorMessage();
    QVERIFY2(message.contains(file), qPrintable(message));
    QVERIFY2(message.contains(reason), qPrintable(message));
    // Validation comes first: DEST was not even created.
    QVERIFY2(!QFileInfo::exists(dest), qPrintable(topEntries(dest).join(u", ")));

    // Into an existing, empty DEST: it stays empty.
    QVERIFY(QDir().mkpath(dest));
    const Result<SampleDataResult> again = exportFashionMnist(dest, options);
    QVERIFY(!again.ok());
    QCOMPARE(topEntries(dest), QStringList());
}

void TestSampleData::cancel_data()
{
    QTest::addColumn<int>("cancelAt");
    QTest::newRow("before starting") << -1;
    QTest::newRow("at the first progress call") << 0;
    QTest::newRow("while writing") << 256;
}

void TestSampleData::cancel()
{
    QFETCH(int, cancelAt);
    QTemporaryDir temp;
    QVERIFY(temp.isValid());
    const QString source = temp.path() + u"/source";
    // Enough images that the export is still busy when it is cancelled.
    QVERIFY(test::writeFile(source + u"/train-images-idx3-ubyte", idxImages(3000)));
    QVERIFY(test::writeFile(source + u"/train-labels-idx1-ubyte", idxLabels(3000)));
    QVERIFY(test::writeFile(source + u"/t10k-images-idx3-ubyte", idxImages(1000)));
    QVERIFY(test::writeFile(source + u"/t10k-labels-idx1-ubyte", idxLabels(1000)));
    const QString dest = temp.path() + u"/dest";
    QVERIFY(QDir().mkpath(dest));
    QVERIFY(test::writeFile(dest + u"/notes.txt", "mine"));
    const Snapshot before = snapshot(dest);

    std::atomic_bool cancelFlag{cancelAt < 0};
    std::atomic<int64_t> maxDone{0};
    SampleDataOptions options;
    options.source = source;
    options.threads = 2;
    const Result<SampleDataResult> result = exportFashionMnist(
        dest, options,
        [&](int64_t done, int64_t) {
            int64_t seen = maxDone.load();
            while (done > seen && !maxDone.compare_exchange_weak(seen, done)) { }
            if (cancelAt >= 0 && done >= cancelAt)
                cancelFlag = true;
        },
        &cancelFlag);
    QVERIFY2(result.ok(), qPrintable(result.errorMessage()));
    QVERIFY(result->cancelled);
    QCOMPARE(result->imagesWritten, 0);
    QVERIFY(maxDone.load() < 4000);
    // No train/, val/, marker or temporary folder: DEST is as it was.
    QCOMPARE(snapshot(dest), before);
    QCOMPARE(topEntries(dest), QStringList{QStringLiteral("notes.txt")});
}

void TestSampleData::cliExport()
{
    if (!m_haveRealData)
        QSKIP("Debian's dataset-fashion-mnist package is not installed");
    QTemporaryDir temp;
    QVERIFY(temp.isValid());
    const QString dest = temp.path() + u"/fashion";
    const QStringList limited{QStringLiteral("sample-data"), dest,
                              QStringLiteral("--limit-per-class"), QStringLiteral("5")};
    const test::ProcessResult first = test::runCli(limited);
    QVERIFY2(first.exitCode == 0 && !first.crashed, describe(first).constData());
    QVERIFY2(first.out.contains("Exported Fashion-MNIST to"), first.out.constData());
    QVERIFY2(first.out.contains(dest.toUtf8()), first.out.constData());
    QVERIFY2(first.out.contains("50 train and 50 val images in 10 classes"), first.out.constData());
    QCOMPARE(countFiles(dest + u"/train"), 50);
    QCOMPARE(countFiles(dest + u"/val"), 50);
    QCOMPARE(QDir(dest + u"/train/Ankle_boot").entryList(QDir::Files).size(), 5);
    QVERIFY(QFileInfo::exists(dest + u"/.ifstudio-sample.json"));

    const test::ProcessResult second = test::runCli(limited);
    QVERIFY2(second.exitCode == 0 && !second.crashed, describe(second).constData());
    QVERIFY2(second.out.contains("already in"), second.out.constData());

    // Other options on an existing export: refused, exit 1.
    const test::ProcessResult other = test::runCli({QStringLiteral("sample-data"), dest});
    QVERIFY2(!other.crashed && other.exitCode == 1, describe(other).constData());
    QVERIFY2(other.err.contains("other options"), other.err.constData());

    const test::ProcessResult badLimit
        = test::runCli({QStringLiteral("sample-data"), dest, QStringLiteral("--limit-per-class"),
                        QStringLiteral("-3")});
    QCOMPARE(badLimit.exitCode, 2);
    const test::ProcessResult noDest = test::runCli({QStringLiteral("sample-data")});
    QCOMPARE(noDest.exitCode, 2);
    const test::ProcessResult help
        = test::runCli({QStringLiteral("sample-data"), QStringLiteral("--help")});
    QCOMPARE(help.exitCode, 0);
    QVERIFY(help.out.contains("--limit-per-class"));
}

void TestSampleData::cliMissingSource()
{
    QTemporaryDir temp;
    QVERIFY(temp.isValid());
    const QString dest = temp.path() + u"/fashion";
    const test::ProcessResult run
        = test::runCli({QStringLiteral("sample-data"), dest, QStringLiteral("--source"),
                        QStringLiteral("/nonexistent")});
    QVERIFY2(!run.crashed && run.exitCode == 1, describe(run).constData());
    QVERIFY2(run.err.contains("Fashion-MNIST was not found in /nonexistent: install Debian's "
                              "dataset-fashion-mnist package (apt-get install "
                              "dataset-fashion-mnist) or pass --source DIR"),
             run.err.constData());
    QVERIFY(!QFileInfo::exists(dest));
}

QTEST_GUILESS_MAIN(TestSampleData)
#include "tst_sampledata.moc"
