// The scanner against torchvision's own ImageFolder (the oracle, run with /usr/bin/python3) on
// generated trees with tricky names, symlinks, nesting and non-image files.
#include "base/filenames.h"
#include "dataset/imagefolder.h"
#include "testutil.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRandomGenerator>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QTest>

#include <mutex>
#include <set>

using namespace ifs;
using namespace ifs::test;

namespace {

struct Tree
{
    explicit Tree(const QString &rootPath)
        : root(rootPath)
    { }
    QString root;

    void file(const QString &relative, const QByteArray &bytes = {}) const
    {
        QVERIFY2(writeFile(root + u'/' + relative, bytes), qPrintable(relative));
    }
    void dir(const QString &relative) const { QVERIFY(QDir().mkpath(root + u'/' + relative)); }
    void link(const QString &target, const QString &relative) const
    {
        QVERIFY2(QFile::link(target, root + u'/' + relative), qPrintable(relative));
    }
};

QJsonObject oracle(const QString &root)
{
    const ProcessResult result = runOracle(QStringLiteral("imagefolder_oracle.py"), {root});
    if (result.exitCode != 0 || result.crashed)
        qWarning() << "oracle failed:" << result.err;
    return QJsonDocument::fromJson(result.out).object();
}

/// Compares our index with the oracle's answer, sample by sample, with a readable first difference.
void compareWithOracle(const ImageFolderIndex &index, const QJsonObject &expected)
{
    QVERIFY2(expected.value(u"ok").toBool(), qPrintable(expected.value(u"error").toString()));
    QVERIFY2(index.refusal.isEmpty(), qPrintable(index.refusal));

    QStringList classes;
    for (const QJsonValue &value : expected.value(u"classes").toArray())
        classes.append(value.toString());
    QCOMPARE(index.classes, classes);

    const QJsonObject classToIdx = expected.value(u"class_to_idx").toObject();
    QCOMPARE(classToIdx.size(), index.classes.size());
    for (int i = 0; i < index.classes.size(); ++i)
        QCOMPARE(classToIdx.value(index.classes[i]).toInt(-1), i);

    const QJsonArray samples = expected.value(u"samples").toArray();
    for (qsizetype i = 0; i < qMin<qsizetype>(samples.size(), qsizetype(index.samples.size()));
         ++i) {
        const QJsonArray pair = samples[i].toArray();
        const Sample &ours = index.samples[size_t(i)];
        if (ours.displayPath() != pair[0].toString() || ours.classIndex != pair[1].toInt()) {
            QFAIL(qPrintable(QStringLiteral("sample %1: ours (%2, %3), torchvision (%4, %5)")
                                 .arg(i)
                                 .arg(ours.displayPath())
                                 .arg(ours.classIndex)
                                 .arg(pair[0].toString())
                                 .arg(pair[1].toInt())));
        }
    }
    QCOMPARE(qsizetype(index.samples.size()), samples.size());

    std::vector<int64_t> counts(size_t(index.classes.size()), 0);
    for (const Sample &sample : index.samples)
        ++counts[size_t(sample.classIndex)];
    QCOMPARE(index.counts, counts);
}

} // namespace

class TestImageFolder : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void extensions_data();
    void extensions();
    void trickyTreeMatchesTorchvision();
    void nonUtf8NamesMatchTorchvision();
    void fileNameCodecRoundTrips();
    void randomTreesMatchTorchvision_data();
    void randomTreesMatchTorchvision();
    void refusals_data();
    void refusals();
    void allowEmptyKeepsEmptyClasses();
    void symlinkLoopTerminatesAndIsReported();
    void rootErrors();
    void streamingCallbacksAndCancel();
};

void TestImageFolder::extensions_data()
{
    QTest::addColumn<QString>("name");
    QTest::addColumn<bool>("image");
    QTest::newRow("jpg") << "a.jpg" << true;
    QTest::newRow("upper JPEG") << "A.JPEG" << true;
    QTest::newRow("mixed Png") << "x.Png" << true;
    QTest::newRow("tiff") << "scan.tiff" << true;
    QTest::newRow("webp") << "w.webp" << true;
    QTest::newRow("pgm") << "p.pgm" << true;
    QTest::newRow("hidden file") << ".hidden.jpg" << true;
    QTest::newRow("only extension") << ".png" << true;
    QTest::newRow("gif is not in torchvision's list") << "anim.gif" << false;
    QTest::newRow("text") << "notes.txt" << false;
    QTest::newRow("jpg inside") << "a.jpg.txt" << false;
    QTest::newRow("no dot") << "jpg" << false;
    QTest::newRow("empty") << "" << false;
    // Each extension in both cases, and near misses of the packed comparison.
    const QStringList extensions{
        QStringLiteral(".jpg"), QStringLiteral(".jpeg"), QStringLiteral(".png"),
        QStringLiteral(".ppm"), QStringLiteral(".bmp"),  QStringLiteral(".pgm"),
        QStringLiteral(".tif"), QStringLiteral(".tiff"), QStringLiteral(".webp")};
    for (const QString &lower : extensions) {
        const QString upper = lower.toUpper(), cut = lower.chopped(1);
        const QString name = QStringLiteral("name") + lower;
        QTest::newRow(qPrintable(name)) << name << true;
        QTest::newRow(qPrintable(QString(QStringLiteral("NAME") + upper)))
            << QString(QStringLiteral("NAME") + upper) << true;
        QTest::newRow(qPrintable(QString(QStringLiteral("bare ") + lower))) << lower << true;
        QTest::newRow(qPrintable(QString(QStringLiteral("without dot ") + lower)))
            << lower.mid(1) << false;
        QTest::newRow(qPrintable(QString(QStringLiteral("one more byte ") + lower)))
            << QString(lower + u'x') << false;
        // ".tiff" cut is ".tif", an extension of its own.
        QTest::newRow(qPrintable(QString(QStringLiteral("cut ") + lower)))
            << QString(QStringLiteral("name") + cut) << extensions.contains(cut);
    }
    QTest::newRow("jpg with a letter before the dot changed") << "a_jpg" << false;
    QTest::newRow("tif inside tiff") << "a.tiffx" << false;
    QTest::newRow("non-ASCII before") << QStringLiteral("é.png") << true;
    QTest::newRow("non-ASCII in the tail") << QStringLiteral("a.pñg") << false;
}

void TestImageFolder::extensions()
{
    QFETCH(QString, name);
    QFETCH(bool, image);
    QCOMPARE(hasImageExtension(name.toStdString()), image);
}

void TestImageFolder::trickyTreeMatchesTorchvision()
{
    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    const QString root = tmp.path() + QStringLiteral("/data set");
    Tree t(root);
    // Class names that sort differently by code point, case, locale or number.
    t.file(QStringLiteral("b/1.jpg"));
    t.file(QStringLiteral("B/1.jpg"));
    t.file(QStringLiteral("a/2.png"));
    t.file(QStringLiteral("a/10.png"));
    t.file(QStringLiteral("a/Z.PNG"));
    t.file(QStringLiteral("a/_under.jpeg"));
    t.file(QStringLiteral("a/.hidden.jpg"));
    t.file(QStringLiteral("a/notes.txt"));
    t.file(QStringLiteral("a/img.jpg.bak"));
    t.file(QStringLiteral("a/noext"));
    // Nested folders whose full-path order differs from a depth-first walk: ' ' < '-' < '/' < '0'.
    t.file(QStringLiteral("a/sub/x.jpg"));
    t.file(QStringLiteral("a/sub/deeper/y.jpg"));
    t.file(QStringLiteral("a/sub b/x.jpg"));
    t.file(QStringLiteral("a/sub-b/x.jpg"));
    t.file(QStringLiteral("a/sub0/x.jpg"));
    t.file(QStringLiteral("a/sub.d/x.webp"));
    t.dir(QStringLiteral("a/dir.jpg")); // a folder with an image name is walked, not listed
    t.file(QStringLiteral("a/dir.jpg/inside.bmp"));
    t.file(QStringLiteral("ä/ü.tif"));
    t.file(QStringLiteral("Zebra/ß.TIFF"));
    t.file(QStringLiteral("émoji😀/😀.ppm"));
    t.file(QStringLiteral("10/x.pgm"));
    t.file(QStringLiteral("2/x.jpg"));
    t.file(QStringLiteral(".ipynb_checkpoints/x-checkpoint.jpg"));
    t.file(QStringLiteral("with space/a b.jpg"));
    t.file(QStringLiteral("dots.in.name/.jpg"));
    t.file(QStringLiteral("loose.jpg")); // a file at the root is no class
    // Symlinks: a class that is a link, a linked folder inside a class, a linked file, a broken
    // link with an image name (torchvision lists it: it is not a directory).
    t.link(root + QStringLiteral("/a/sub"), QStringLiteral("linked class"));
    t.link(root + QStringLiteral("/b"), QStringLiteral("B/linked-b"));
    t.link(root + QStringLiteral("/a/2.png"), QStringLiteral("b/link.png"));
    t.link(root + QStringLiteral("/nowhere.jpg"), QStringLiteral("b/broken.jpg"));
    t.link(root + QStringLiteral("/nowhere"), QStringLiteral("broken-class-link"));

    Result<ImageFolderIndex> scanned = scanImageFolder(root);
    QVERIFY2(scanned.ok(), qPrintable(scanned.errorMessage()));
    compareWithOracle(scanned.value(), oracle(root));
    QVERIFY(scanned->issues.isEmpty());
}

void TestImageFolder::nonUtf8NamesMatchTorchvision()
{
    // Names that are not valid UTF-8 (legal on Linux): torchvision keeps them through Python's
    // surrogateescape, and sorts the lone surrogates (U+DC80..U+DCFF) among the code points, which
    // is not byte order: "\xff" (U+DCFF) comes before "\xee\x80\x80" (U+E000) and
    // "\xf0\x9f\x98\x80" (U+1F600), but after "\xe4\xb8\xad" (U+4E2D).
    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    const auto cleanup = qScopeGuard([&] { removeTree(tmp.path()); });
    Tree t(tmp.path());
    const char *const names[] = {
        "a/\xff\xfe.jpg", // two undecodable bytes
        "a/\xc3\xa9.jpg", // valid é
        "a/\xc3.jpg", // a lead byte alone
        "a/\xe2\x82.jpg", // a sequence cut short
        "a/\xed\xa0\x80.jpg", // an encoded surrogate (invalid in UTF-8)
        "a/\xc0\xaf.jpg", // an overlong '/'
        "a/\xf4\x90\x80\x80.jpg", // beyond U+10FFFF
        "a/\xef\xbf\xbd.jpg", // a real U+FFFD: not the same name as an escaped byte
        "a/\xee\x80\x80.jpg", // U+E000
        "a/\xf0\x9f\x98\x80.jpg", // U+1F600
        "a/\xe4\xb8\xad.jpg", // U+4E2D
        "a/\x80.JPG",
        "a/z.jpg",
        "a/d\xff/1.png", // folders sort by full path, with the same rules
        "a/d\xee\x80\x80/1.png",
        "a/d\xe4\xb8\xad/1.png",
        "a/d/1.png",
        "\xff/x.png", // class names too
        "\xee\x80\x80/x.png",
        "\xe4\xb8\xad/x.png",
        "\xff\x80\xfe/sub\xff/x.webp",
        "b\xff.jpg/x.bmp", // a folder with an image name is walked
        "c/\xff.txt", // not an image: no class without images allowed
        "c/ok.jpg",
    };
    for (const char *name : names)
        t.file(decodeFileName(name));

    Result<ImageFolderIndex> scanned = scanImageFolder(tmp.path());
    QVERIFY2(scanned.ok(), qPrintable(scanned.errorMessage()));
    compareWithOracle(scanned.value(), oracle(tmp.path()));
    QVERIFY(scanned->issues.isEmpty());
    // Every path opens by its bytes.
    for (const Sample &sample : scanned->samples) {
        FileNameFile file(scanned->absolutePath(sample));
        QVERIFY2(file.open(QIODevice::ReadOnly), qPrintable(displayFileName(file.fileName())));
    }
}

void TestImageFolder::fileNameCodecRoundTrips()
{
    QRandomGenerator random(7);
    for (int round = 0; round < 2000; ++round) {
        std::string bytes;
        const int length = int(random.bounded(1, 12));
        for (int i = 0; i < length; ++i) {
            // Mostly the interesting bytes: lead and continuation bytes, ASCII now and then.
            const quint32 pick = random.bounded(4);
            bytes += char(pick == 0 ? random.bounded(0x20, 0x80) : random.bounded(0x80, 0x100));
        }
        const QString name = decodeFileName(bytes);
        QCOMPARE(encodeFileName(name), QByteArray::fromStdString(bytes));
        QCOMPARE(hasEscapedBytes(name), !isValidUtf8(bytes));
        QVERIFY(!hasEscapedBytes(displayFileName(name)));
        if (isValidUtf8(bytes))
            QCOMPARE(name, QString::fromUtf8(QByteArray::fromStdString(bytes)));
    }
}

void TestImageFolder::randomTreesMatchTorchvision_data()
{
    QTest::addColumn<quint32>("seed");
    for (quint32 seed : {1u, 2u, 3u, 4u, 5u})
        QTest::newRow(qPrintable(QStringLiteral("seed %1").arg(seed))) << seed;
}

void TestImageFolder::randomTreesMatchTorchvision()
{
    QFETCH(quint32, seed);
    QRandomGenerator random(seed);
    const QStringList parts
        = {QStringLiteral("a"), QStringLiteral("A"), QStringLiteral("b"), QStringLiteral(" "),
           QStringLiteral("-"), QStringLiteral("."), QStringLiteral("_"), QStringLiteral("0"),
           QStringLiteral("9"), QStringLiteral("é"), QStringLiteral("Ω"), QStringLiteral("中"),
           QStringLiteral("~"), QStringLiteral("😀"), QStringLiteral("z")};
    const QStringList extensions
        = {QStringLiteral(".jpg"), QStringLiteral(".JPG"),  QStringLiteral(".png"),
           QStringLiteral(".txt"), QStringLiteral(".jpeg"), QStringLiteral(".gif"),
           QStringLiteral(".Tif"), QStringLiteral("")};
    auto randomName = [&] {
        QString name;
        const int length = 1 + int(random.bounded(4));
        for (int i = 0; i < length; ++i)
            name += parts[int(random.bounded(parts.size()))];
        return name == u"." || name == u".." ? name + u'x' : name;
    };

    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    Tree t(tmp.path());
    const int classCount = 3 + int(random.bounded(6));
    for (int c = 0; c < classCount; ++c) {
        const QString cls = randomName();
        t.file(cls + QStringLiteral("/guaranteed.jpg"));
        QStringList folders{cls};
        for (int f = 0; f < 60; ++f) {
            if (random.bounded(5) == 0) {
                // No part or extension holds a 'd': folders and files never share a name.
                const QString folder
                    = folders[int(random.bounded(folders.size()))] + u'/' + randomName() + u'd';
                folders.append(folder);
                t.dir(folder);
            } else {
                const QString folder = folders[int(random.bounded(folders.size()))];
                t.file(folder + u'/' + randomName()
                       + extensions[int(random.bounded(extensions.size()))]);
            }
        }
    }
    Result<ImageFolderIndex> scanned = scanImageFolder(tmp.path());
    QVERIFY2(scanned.ok(), qPrintable(scanned.errorMessage()));
    compareWithOracle(scanned.value(), oracle(tmp.path()));
}

void TestImageFolder::refusals_data()
{
    QTest::addColumn<QStringList>("files");
    QTest::addColumn<QString>("expectedInMessage");
    QTest::newRow("no class folder")
        << QStringList{QStringLiteral("a.jpg"), QStringLiteral("b.png")}
        << QStringLiteral("No class folders");
    QTest::newRow("empty folder") << QStringList{} << QStringLiteral("No class folders");
    QTest::newRow("class without images")
        << QStringList{QStringLiteral("cat/1.jpg"), QStringLiteral("dog/readme.txt")}
        << QStringLiteral("“dog”");
    QTest::newRow("two empty classes")
        << QStringList{QStringLiteral("cat/1.jpg"), QStringLiteral("dog/x.gif"),
                       QStringLiteral("emu/sub/y.txt")}
        << QStringLiteral("“dog”, “emu”");
}

void TestImageFolder::refusals()
{
    QFETCH(QStringList, files);
    QFETCH(QString, expectedInMessage);
    QTemporaryDir tmp;
    Tree t(tmp.path());
    for (const QString &file : files)
        t.file(file);

    const QJsonObject expected = oracle(tmp.path());
    QVERIFY2(!expected.value(u"ok").toBool(true), "torchvision accepted the tree");

    Result<ImageFolderIndex> scanned = scanImageFolder(tmp.path());
    QVERIFY(scanned.ok());
    QVERIFY(!scanned->acceptedByTorchvision());
    QVERIFY2(scanned->refusal.contains(expectedInMessage), qPrintable(scanned->refusal));
}

void TestImageFolder::allowEmptyKeepsEmptyClasses()
{
    QTemporaryDir tmp;
    Tree t(tmp.path());
    t.file(QStringLiteral("cat/1.jpg"));
    t.file(QStringLiteral("cat/2.jpg"));
    t.dir(QStringLiteral("dog"));
    ScanOptions options;
    options.allowEmpty = true;
    Result<ImageFolderIndex> scanned = scanImageFolder(tmp.path(), options);
    QVERIFY(scanned.ok());
    QVERIFY(scanned->refusal.isEmpty());
    QCOMPARE(scanned->classes, (QStringList{QStringLiteral("cat"), QStringLiteral("dog")}));
    QCOMPARE(scanned->counts, (std::vector<int64_t>{2, 0}));
    QCOMPARE(scanned->issues.size(), 1);
    QCOMPARE(scanned->issues[0].kind, ScanIssue::Kind::EmptyClass);
}

void TestImageFolder::symlinkLoopTerminatesAndIsReported()
{
    QTemporaryDir tmp;
    Tree t(tmp.path());
    t.file(QStringLiteral("cat/1.jpg"));
    t.file(QStringLiteral("cat/sub/2.jpg"));
    t.link(tmp.path() + QStringLiteral("/cat"), QStringLiteral("cat/sub/back-to-cat"));
    t.link(tmp.path() + QStringLiteral("/cat/sub"), QStringLiteral("cat/sub/self"));
    t.file(QStringLiteral("dog/1.jpg"));

    Result<ImageFolderIndex> scanned = scanImageFolder(tmp.path());
    QVERIFY(scanned.ok());
    QVERIFY(scanned->acceptedByTorchvision());
    QCOMPARE(scanned->counts, (std::vector<int64_t>{2, 1}));
    QStringList loops;
    for (const ScanIssue &issue : scanned->issues) {
        QCOMPARE(issue.kind, ScanIssue::Kind::SymlinkLoop);
        QVERIFY(issue.message.contains(issue.path));
        loops.append(issue.path);
    }
    loops.sort();
    QCOMPARE(loops,
             (QStringList{QStringLiteral("cat/sub/back-to-cat"), QStringLiteral("cat/sub/self")}));
}

void TestImageFolder::rootErrors()
{
    QTemporaryDir tmp;
    Result<ImageFolderIndex> missing = scanImageFolder(tmp.path() + QStringLiteral("/nope"));
    QVERIFY(!missing.ok());
    QVERIFY2(missing.errorMessage().contains(QStringLiteral("does not exist")),
             qPrintable(missing.errorMessage()));

    QVERIFY(writeFile(tmp.path() + QStringLiteral("/file.jpg"), "x"));
    Result<ImageFolderIndex> file = scanImageFolder(tmp.path() + QStringLiteral("/file.jpg"));
    QVERIFY(!file.ok());
    QVERIFY2(file.errorMessage().contains(QStringLiteral("not a folder")),
             qPrintable(file.errorMessage()));
}

void TestImageFolder::streamingCallbacksAndCancel()
{
    QTemporaryDir tmp;
    Tree t(tmp.path());
    for (int c = 0; c < 20; ++c) {
        for (int i = 0; i < 50; ++i)
            t.file(QStringLiteral("class%1/%2.jpg").arg(c, 2, 10, QChar(u'0')).arg(i));
    }

    std::mutex mutex;
    QStringList announced;
    std::set<int> progressed;
    ScanCallbacks callbacks;
    callbacks.classesFound = [&](const QStringList &classes) {
        std::lock_guard lock(mutex);
        QVERIFY(progressed.empty()); // classes come first, before any count
        announced = classes;
    };
    callbacks.classProgress = [&](int cls, int64_t count) {
        std::lock_guard lock(mutex);
        QVERIFY(count > 0 && count <= 50);
        progressed.insert(cls);
    };
    Result<ImageFolderIndex> scanned = scanImageFolder(tmp.path(), {}, callbacks);
    QVERIFY(scanned.ok());
    QCOMPARE(announced.size(), 20);
    QCOMPARE(announced, scanned->classes);
    QCOMPARE(int(progressed.size()), 20);
    QCOMPARE(scanned->sampleCount(), 1000);

    // Cancelled from the first callback: the scan stops and says so.
    std::atomic_bool cancel{false};
    ScanCallbacks cancelling;
    cancelling.classesFound = [&](const QStringList &) {
        cancel = true;
    };
    Result<ImageFolderIndex> stopped = scanImageFolder(tmp.path(), {}, cancelling, &cancel);
    QVERIFY(stopped.ok());
    QVERIFY(stopped->cancelled);
    QVERIFY(!stopped->acceptedByTorchvision());
    QVERIFY(stopped->sampleCount() < 1000);
}

QTEST_GUILESS_MAIN(TestImageFolder)
#include "tst_imagefolder.moc"
