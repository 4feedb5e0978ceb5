// Quarantine: flagged files move out of the dataset into a batch folder with a manifest, and back.
// Nothing is ever deleted; every refusal leaves the files where they were.
#include "base/filenames.h"
#include "dataset/quarantine.h"

#include "testutil.h"

#include <QCryptographicHash>
#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QTest>

#include <sys/stat.h>

using namespace ifs;

namespace {

QByteArray readAll(const QString &path)
{
    FileNameFile file(path); // by its bytes: names may hold undecodable ones
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

/// Every file under `root` with a digest of its bytes, relative paths as keys.
QMap<QString, QByteArray> snapshot(const QString &root)
{
    QMap<QString, QByteArray> files;
    QDirIterator it(root, QDir::Files | QDir::Hidden | QDir::System, QDirIterator::Subdirectories);
    while (it.hasNext()) {
        const QString path = it.next();
        files.insert(QDir(root).relativeFilePath(path),
                     QCryptographicHash::hash(readAll(path), QCryptographicHash::Sha1));
    }
    return files;
}

} // namespace

class TestQuarantine : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void init();

    void defaultFolder_data();
    void defaultFolder();
    void roundTrip();
    void manifestReadsBack();
    void batchNamesNeverCollide();
    void refusals_data();
    void refusals();
    void failureHalfwayMovesEverythingBack();
    void undoRefusesWhenAnOriginalIsTaken();
    void undoAfterRestart();
    void manifestCannotMoveForeignFiles();
    void acrossFileSystems();
    void undecodableNamesMoveAndComeBack();
    void relabelRoundTrip();
    void relabelRefusals();
    void relabelManifestStaysInTheDataset();

private:
    /// A split dataset of real images (PNG bytes made by Qt's writer) in a fresh sandbox.
    void makeDataset();

    std::unique_ptr<QTemporaryDir> m_dir;
    QString m_root;
    QString m_quarantine;
};

void TestQuarantine::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    makeDataset();
}

void TestQuarantine::makeDataset()
{
    m_root = m_dir->filePath(QStringLiteral("flowers"));
    m_quarantine = defaultQuarantineFolder(m_root);
    const QStringList files = {
        QStringLiteral("train/rose/001.png"),  QStringLiteral("train/rose/002.png"),
        QStringLiteral("train/tulip/001.png"), QStringLiteral("train/tulip/broken.png"),
        QStringLiteral("val/rose/001.png"),    QStringLiteral("val/tulip/caf\u00e9 1.png"),
    };
    int shade = 0;
    for (const QString &file : files) {
        QImage image(16, 16, QImage::Format_RGB888);
        image.fill(QColor(shade, 255 - shade, 128));
        shade += 40;
        QVERIFY(QDir().mkpath(QFileInfo(m_root + u'/' + file).absolutePath()));
        QVERIFY(image.save(m_root + u'/' + file, "PNG"));
    }
}

void TestQuarantine::defaultFolder_data()
{
    QTest::addColumn<QString>("root");
    QTest::addColumn<QString>("expected");
    QTest::newRow("plain") << QStringLiteral("/data/flowers")
                           << QStringLiteral("/data/flowers.quarantine");
    QTest::newRow("trailing slash")
        << QStringLiteral("/data/flowers/") << QStringLiteral("/data/flowers.quarantine");
    QTest::newRow("dots") << QStringLiteral("/data/x/../flowers/.")
                          << QStringLiteral("/data/flowers.quarantine");
}

void TestQuarantine::defaultFolder()
{
    QFETCH(QString, root);
    QFETCH(QString, expected);
    QCOMPARE(defaultQuarantineFolder(root), expected);
}

void TestQuarantine::roundTrip()
{
    const QMap<QString, QByteArray> before = snapshot(m_root);
    const QStringList flagged = {m_root + QStringLiteral("/train/tulip/broken.png"),
                                 m_root + QStringLiteral("/val/tulip/caf\u00e9 1.png")};
    const Result<QuarantineBatch> batch = quarantineFiles(m_root, flagged, m_quarantine);
    QVERIFY2(batch.ok(), qPrintable(batch.errorMessage()));

    // Out of the dataset, into <dataset>.quarantine/<batch>/<split>/<class>/<file>.
    QCOMPARE(QFileInfo(batch->batchFolder).absolutePath(), m_quarantine);
    QCOMPARE(batch->entries.size(), 2);
    for (const QuarantineEntry &entry : batch->entries) {
        QVERIFY(!QFileInfo::exists(entry.originalPath));
        QVERIFY(QFileInfo::exists(entry.quarantinedPath));
        const QString relative = QDir(m_root).relativeFilePath(entry.originalPath);
        QCOMPARE(entry.quarantinedPath, batch->batchFolder + u'/' + relative);
        QCOMPARE(QCryptographicHash::hash(readAll(entry.quarantinedPath), QCryptographicHash::Sha1),
                 before.value(relative));
    }
    QMap<QString, QByteArray> expected = before;
    expected.remove(QStringLiteral("train/tulip/broken.png"));
    expected.remove(QStringLiteral("val/tulip/caf\u00e9 1.png"));
    QCOMPARE(snapshot(m_root), expected);

    // The manifest lists the moves, with absolute paths.
    QVERIFY(batch->manifestPath.startsWith(batch->batchFolder + u'/'));
    const QJsonObject manifest = QJsonDocument::fromJson(readAll(batch->manifestPath)).object();
    QCOMPARE(manifest[u"dataset_root"].toString(), QDir::cleanPath(m_root));
    const QJsonArray entries = manifest[u"entries"].toArray();
    QCOMPARE(entries.size(), 2);
    QCOMPARE(entries[0][u"original"].toString(), batch->entries[0].originalPath);
    QCOMPARE(entries[0][u"quarantined"].toString(), batch->entries[0].quarantinedPath);

    // Undo: everything back, byte for byte; the batch folder and its manifest are gone.
    const Status undone = undoQuarantine(batch.value());
    QVERIFY2(undone.ok(), qPrintable(undone.errorMessage()));
    QCOMPARE(snapshot(m_root), before);
    QVERIFY(!QFileInfo::exists(batch->batchFolder));
    QVERIFY(!QFileInfo::exists(batch->manifestPath));
}

void TestQuarantine::manifestReadsBack()
{
    const Result<QuarantineBatch> batch
        = quarantineFiles(m_root, {m_root + QStringLiteral("/train/rose/002.png")}, m_quarantine);
    QVERIFY2(batch.ok(), qPrintable(batch.errorMessage()));
    const Result<QuarantineBatch> read = readQuarantineManifest(batch->manifestPath);
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->batchFolder, batch->batchFolder);
    QCOMPARE(read->manifestPath, batch->manifestPath);
    QCOMPARE(read->entries.size(), 1);
    QCOMPARE(read->entries[0].originalPath, batch->entries[0].originalPath);
    QCOMPARE(read->entries[0].quarantinedPath, batch->entries[0].quarantinedPath);
}

void TestQuarantine::batchNamesNeverCollide()
{
    // Three batches within the same second get three folders.
    QStringList folders;
    for (const QString &file :
         {QStringLiteral("/train/rose/001.png"), QStringLiteral("/train/rose/002.png"),
          QStringLiteral("/val/rose/001.png")}) {
        const Result<QuarantineBatch> batch
            = quarantineFiles(m_root, {m_root + file}, m_quarantine);
        QVERIFY2(batch.ok(), qPrintable(batch.errorMessage()));
        QVERIFY(!folders.contains(batch->batchFolder));
        folders += batch->batchFolder;
    }
    QCOMPARE(QDir(m_quarantine).entryList(QDir::Dirs | QDir::NoDotAndDotDot).size(), 3);
}

void TestQuarantine::refusals_data()
{
    QTest::addColumn<QStringList>("files");
    QTest::addColumn<QString>("quarantine");
    QTest::addColumn<QString>("expected");
    // Paths are relative to the sandbox; "flowers" is the dataset.
    QTest::newRow("outside the dataset")
        << QStringList{QStringLiteral("flowers/train/rose/001.png"),
                       QStringLiteral("elsewhere.png")}
        << QString() << QStringLiteral("is outside the dataset folder");
    QTest::newRow("sneaking out with ..")
        << QStringList{QStringLiteral("flowers/train/../../elsewhere.png")} << QString()
        << QStringLiteral("is outside the dataset folder");
    QTest::newRow("the root itself") << QStringList{QStringLiteral("flowers")} << QString()
                                     << QStringLiteral("is outside the dataset folder");
    QTest::newRow("a folder") << QStringList{QStringLiteral("flowers/train/rose")} << QString()
                              << QStringLiteral("is a folder");
    QTest::newRow("missing") << QStringList{QStringLiteral("flowers/train/rose/404.png")}
                             << QString() << QStringLiteral("does not exist");
    QTest::newRow("nothing") << QStringList() << QString() << QStringLiteral("No files");
    QTest::newRow("quarantine inside the dataset")
        << QStringList{QStringLiteral("flowers/train/rose/001.png")}
        << QStringLiteral("flowers/quarantine") << QStringLiteral("would take it for a class");
}

void TestQuarantine::refusals()
{
    QFETCH(QStringList, files);
    QFETCH(QString, quarantine);
    QFETCH(QString, expected);
    QVERIFY(
        test::writeFile(m_dir->filePath(QStringLiteral("elsewhere.png")), "not in the dataset"));
    QStringList absolute;
    for (const QString &file : std::as_const(files))
        absolute += m_dir->filePath(file);
    const QString folder = quarantine.isEmpty() ? m_quarantine : m_dir->filePath(quarantine);
    const QMap<QString, QByteArray> before = snapshot(m_dir->path());
    const Result<QuarantineBatch> batch = quarantineFiles(m_root, absolute, folder);
    QVERIFY(!batch.ok());
    QVERIFY2(batch.errorMessage().contains(expected), qPrintable(batch.errorMessage()));
    QCOMPARE(snapshot(m_dir->path()), before); // nothing moved, nothing created
    QVERIFY(!QFileInfo::exists(folder));
}

void TestQuarantine::failureHalfwayMovesEverythingBack()
{
    // "train/other" is a link to "train/rose": its 001.png is rose/001.png. Once rose/001.png is
    // in quarantine, the second path names nothing, so the move fails after one success.
    QVERIFY(QFile::link(m_root + QStringLiteral("/train/rose"),
                        m_root + QStringLiteral("/train/other")));
    const QMap<QString, QByteArray> before = snapshot(m_root);
    const Result<QuarantineBatch> batch
        = quarantineFiles(m_root,
                          {m_root + QStringLiteral("/train/tulip/001.png"),
                           m_root + QStringLiteral("/train/rose/001.png"),
                           m_root + QStringLiteral("/train/other/001.png")},
                          m_quarantine);
    QVERIFY(!batch.ok());
    QVERIFY2(batch.errorMessage().contains(u"train/other/001.png"),
             qPrintable(batch.errorMessage()));
    QVERIFY2(batch.errorMessage().contains(u"Nothing was moved"), qPrintable(batch.errorMessage()));
    QCOMPARE(snapshot(m_root), before);
    // No batch left behind.
    QCOMPARE(QDir(m_quarantine).entryList(QDir::AllEntries | QDir::NoDotAndDotDot).size(), 0);
}

void TestQuarantine::undoRefusesWhenAnOriginalIsTaken()
{
    const Result<QuarantineBatch> batch
        = quarantineFiles(m_root,
                          {m_root + QStringLiteral("/train/rose/001.png"),
                           m_root + QStringLiteral("/train/tulip/001.png")},
                          m_quarantine);
    QVERIFY2(batch.ok(), qPrintable(batch.errorMessage()));
    // Someone puts a new file where the second one was.
    QVERIFY(test::writeFile(m_root + QStringLiteral("/train/tulip/001.png"), "a newer picture"));
    const QMap<QString, QByteArray> dataset = snapshot(m_root);
    const QMap<QString, QByteArray> quarantined = snapshot(batch->batchFolder);

    const Status undone = undoQuarantine(batch.value());
    QVERIFY(!undone.ok());
    QVERIFY2(undone.errorMessage().contains(u"train/tulip/001.png"),
             qPrintable(undone.errorMessage()));
    QVERIFY2(undone.errorMessage().contains(u"Nothing was moved back"),
             qPrintable(undone.errorMessage()));
    QCOMPARE(snapshot(m_root), dataset);
    QCOMPARE(snapshot(batch->batchFolder), quarantined);
    QCOMPARE(readAll(m_root + QStringLiteral("/train/tulip/001.png")),
             QByteArray("a newer picture"));
}

void TestQuarantine::undoAfterRestart()
{
    const QMap<QString, QByteArray> before = snapshot(m_root);
    QString manifest;
    {
        const Result<QuarantineBatch> batch = quarantineFiles(
            m_root, {m_root + QStringLiteral("/val/tulip/caf\u00e9 1.png")}, m_quarantine);
        QVERIFY2(batch.ok(), qPrintable(batch.errorMessage()));
        manifest = batch->manifestPath;
    }
    const Result<QuarantineBatch> read = readQuarantineManifest(manifest);
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    const Status undone = undoQuarantine(read.value());
    QVERIFY2(undone.ok(), qPrintable(undone.errorMessage()));
    QCOMPARE(snapshot(m_root), before);
}

void TestQuarantine::manifestCannotMoveForeignFiles()
{
    // A manifest that points outside its batch folder (edited, or not ours) is refused.
    const QString batchFolder = m_quarantine + QStringLiteral("/2020-01-01T00-00-00");
    const QJsonObject entry{
        {QStringLiteral("original"), m_dir->filePath(QStringLiteral("stolen.png"))},
        {QStringLiteral("quarantined"), QString(m_root + QStringLiteral("/train/rose/001.png"))}};
    const QJsonObject root{{QStringLiteral("version"), 1},
                           {QStringLiteral("entries"), QJsonArray{entry}}};
    QVERIFY(test::writeFile(batchFolder + QStringLiteral("/manifest.json"),
                            QJsonDocument(root).toJson()));
    const Result<QuarantineBatch> read
        = readQuarantineManifest(batchFolder + QStringLiteral("/manifest.json"));
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().contains(u"invalid entry"), qPrintable(read.errorMessage()));

    QVERIFY(test::writeFile(batchFolder + QStringLiteral("/broken.json"), "{ not json"));
    QVERIFY(!readQuarantineManifest(batchFolder + QStringLiteral("/broken.json")).ok());
    QVERIFY(!readQuarantineManifest(batchFolder + QStringLiteral("/missing.json")).ok());
}

void TestQuarantine::acrossFileSystems()
{
    // /dev/shm is a tmpfs; the sandbox usually is not: rename() fails with EXDEV and the move
    // becomes copy, check, remove.
    struct stat shm = {}, sandbox = {};
    if (::stat("/dev/shm", &shm) != 0
        || ::stat(QFile::encodeName(m_dir->path()).constData(), &sandbox) != 0
        || shm.st_dev == sandbox.st_dev)
        QSKIP("needs /dev/shm on another file system than the temporary folder");
    QTemporaryDir shmDir(QStringLiteral("/dev/shm/tst_quarantine-XXXXXX"));
    QVERIFY(shmDir.isValid());
    const QString root = shmDir.filePath(QStringLiteral("ds"));
    const QString file = root + QStringLiteral("/a/x.png");
    QVERIFY(test::writeFile(file, QByteArray(300000, 'x') + "end"));
    const QDateTime modified = QDateTime::fromSecsSinceEpoch(1500000000);
    {
        QFile handle(file);
        QVERIFY(handle.open(QIODevice::ReadWrite));
        QVERIFY(handle.setFileTime(modified, QFileDevice::FileModificationTime));
    }
    const QByteArray bytes = readAll(file);

    const Result<QuarantineBatch> batch = quarantineFiles(root, {file}, m_quarantine);
    QVERIFY2(batch.ok(), qPrintable(batch.errorMessage()));
    QVERIFY(!QFileInfo::exists(file));
    const QString moved = batch->entries[0].quarantinedPath;
    QVERIFY(moved.startsWith(m_quarantine));
    QCOMPARE(readAll(moved), bytes);
    QCOMPARE(QFileInfo(moved).lastModified(), modified);

    const Status undone = undoQuarantine(batch.value());
    QVERIFY2(undone.ok(), qPrintable(undone.errorMessage()));
    QCOMPARE(readAll(file), bytes);
    QVERIFY(!QFileInfo::exists(moved));
}

void TestQuarantine::undecodableNamesMoveAndComeBack()
{
    // Names that are not valid UTF-8 (legal on Linux; torchvision lists them): moved out and
    // back by their bytes, through the manifest too, on one file system and across two.
    const auto cleanup = qScopeGuard([&] { test::removeTree(m_dir->path()); });
    const QString folder = m_root + u'/' + decodeFileName("train/tul\xffip");
    const QString file = folder + u'/' + decodeFileName("b\xfe\xc3.png");
    QVERIFY(test::writeFile(file, "not really a PNG"));
    QVERIFY(hasEscapedBytes(file));
    QCOMPARE(fileSizeOf(file), 16);

    QString manifest;
    {
        const Result<QuarantineBatch> batch = quarantineFiles(m_root, {file}, m_quarantine);
        QVERIFY2(batch.ok(), qPrintable(displayFileName(batch.errorMessage())));
        manifest = batch->manifestPath;
        QCOMPARE(fileSizeOf(file), -1);
        QCOMPARE(readAll(batch->entries[0].quarantinedPath), QByteArray("not really a PNG"));
    }
    const Result<QuarantineBatch> read = readQuarantineManifest(manifest);
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->entries[0].originalPath, file);
    const Status undone = undoQuarantine(read.value());
    QVERIFY2(undone.ok(), qPrintable(displayFileName(undone.errorMessage())));
    QCOMPARE(readAll(file), QByteArray("not really a PNG"));
    QCOMPARE(fileSizeOf(read->batchFolder), -1); // its empty folders went too

    struct stat shm = {}, sandbox = {};
    if (::stat("/dev/shm", &shm) != 0
        || ::stat(QFile::encodeName(m_dir->path()).constData(), &sandbox) != 0
        || shm.st_dev == sandbox.st_dev)
        return; // no second file system to move across
    QTemporaryDir shmDir(QStringLiteral("/dev/shm/tst_quarantine-XXXXXX"));
    QVERIFY(shmDir.isValid());
    const auto shmCleanup = qScopeGuard([&] { test::removeTree(shmDir.path()); });
    const QString root = shmDir.filePath(QStringLiteral("ds"));
    const QString far = root + u'/' + decodeFileName("a\x80/x\xff.png");
    QVERIFY(test::writeFile(far, QByteArray(5000, 'y')));
    const Result<QuarantineBatch> batch = quarantineFiles(root, {far}, m_quarantine);
    QVERIFY2(batch.ok(), qPrintable(displayFileName(batch.errorMessage())));
    QCOMPARE(fileSizeOf(far), -1);
    QCOMPARE(readAll(batch->entries[0].quarantinedPath), QByteArray(5000, 'y'));
    QVERIFY2(undoQuarantine(batch.value()).ok(), "undo across file systems");
    QCOMPARE(readAll(far), QByteArray(5000, 'y'));
}

void TestQuarantine::relabelRoundTrip()
{
    // A broken image and a read-only file among them: a relabel moves bytes, never decodes.
    const QString broken = m_root + QStringLiteral("/train/tulip/broken.png");
    QVERIFY(test::writeFile(broken, readAll(broken).left(40)));
    const QString readOnly = m_root + QStringLiteral("/train/rose/002.png");
    QVERIFY(QFile::setPermissions(readOnly, QFile::ReadOwner | QFile::ReadGroup));
    auto restore = qScopeGuard(
        [&] { QFile::setPermissions(readOnly, QFile::ReadOwner | QFile::WriteOwner); });
    const QMap<QString, QByteArray> before = snapshot(m_root);

    const QList<RelabelMove> moves = {
        {m_root + QStringLiteral("/train/rose/001.png"), QStringLiteral("tulip")}, // name taken
        {readOnly, QStringLiteral("tulip")},
        {broken, QStringLiteral("rose")},
        {m_root + QStringLiteral("/val/tulip/caf\u00e9 1.png"), QStringLiteral("rose")},
        {m_root + QStringLiteral("/val/rose/001.png"), QStringLiteral("rose")}, // already there
    };
    const Result<QuarantineBatch> batch = relabelFiles(m_root, moves, m_quarantine);
    QVERIFY2(batch.ok(), qPrintable(batch.errorMessage()));
    QVERIFY(batch->relabel);
    QCOMPARE(batch->entries.size(), 4);
    const QStringList expected
        = {QStringLiteral("train/tulip/001-2.png"), QStringLiteral("train/tulip/002.png"),
           QStringLiteral("train/rose/broken.png"), QStringLiteral("val/rose/caf\u00e9 1.png")};
    for (qsizetype i = 0; i < expected.size(); ++i) {
        const QuarantineEntry &entry = batch->entries[i];
        QCOMPARE(entry.quarantinedPath, QDir::cleanPath(m_root + u'/' + expected[i]));
        QVERIFY(!QFileInfo::exists(entry.originalPath));
        QCOMPARE(QCryptographicHash::hash(readAll(entry.quarantinedPath), QCryptographicHash::Sha1),
                 before.value(QDir(m_root).relativeFilePath(entry.originalPath)));
    }
    QVERIFY(!(QFileInfo(m_root + QStringLiteral("/train/tulip/002.png")).permissions()
              & QFile::WriteOwner)); // still read-only
    // Nothing lost: the same bytes, some under other names; the manifest outside the dataset.
    QStringList beforeHashes, afterHashes;
    for (const QByteArray &h : before)
        beforeHashes.append(QString::fromLatin1(h.toHex()));
    for (const QByteArray &h : snapshot(m_root))
        afterHashes.append(QString::fromLatin1(h.toHex()));
    beforeHashes.sort();
    afterHashes.sort();
    QCOMPARE(afterHashes, beforeHashes);
    QVERIFY(batch->manifestPath.startsWith(m_quarantine + u'/'));
    const QJsonObject manifest = QJsonDocument::fromJson(readAll(batch->manifestPath)).object();
    QCOMPARE(manifest[u"kind"].toString(), QStringLiteral("relabel"));

    // Undo after a restart: from the manifest, every file back under its name.
    const Result<QuarantineBatch> read = readQuarantineManifest(batch->manifestPath);
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QVERIFY(read->relabel);
    QCOMPARE(read->entries.size(), 4);
    const Status undone = undoQuarantine(read.value());
    QVERIFY2(undone.ok(), qPrintable(undone.errorMessage()));
    QCOMPARE(snapshot(m_root), before);
    QVERIFY(!(QFileInfo(readOnly).permissions() & QFile::WriteOwner));
    QVERIFY(!QFileInfo::exists(batch->batchFolder));
}

void TestQuarantine::relabelRefusals()
{
    const QMap<QString, QByteArray> before = snapshot(m_root);
    const QString rose = m_root + QStringLiteral("/train/rose/001.png");
    struct Case
    {
        QList<RelabelMove> moves;
        QString says;
    };
    const QList<Case> cases = {
        {{{rose, QStringLiteral("lily")}}, QStringLiteral("no class folder")},
        {{{rose, QStringLiteral("../tulip")}}, QStringLiteral("not a class folder name")},
        {{{m_dir->filePath(QStringLiteral("elsewhere.png")), QStringLiteral("tulip")}},
         QStringLiteral("not in a class folder")},
        {{{rose, QStringLiteral("rose")}}, QStringLiteral("nothing to relabel")},
        {{{rose, QStringLiteral("tulip")},
          {m_root + QStringLiteral("/train/rose/gone.png"), QStringLiteral("tulip")}},
         QStringLiteral("does not exist")},
    };
    for (const Case &c : cases) {
        const Result<QuarantineBatch> batch = relabelFiles(m_root, c.moves, m_quarantine);
        QVERIFY(!batch.ok());
        QVERIFY2(batch.errorMessage().contains(c.says), qPrintable(batch.errorMessage()));
        QCOMPARE(snapshot(m_root), before);
    }
    QVERIFY(
        !relabelFiles(m_root, {{rose, QStringLiteral("tulip")}}, m_root + QStringLiteral("/x")));
    QCOMPARE(snapshot(m_root), before);
}

void TestQuarantine::relabelManifestStaysInTheDataset()
{
    // A relabel manifest may only move files within its dataset.
    const QString batchFolder = m_quarantine + QStringLiteral("/2020-01-01T00-00-00-relabel");
    const QJsonObject entry{
        {QStringLiteral("original"), m_dir->filePath(QStringLiteral("stolen.png"))},
        {QStringLiteral("quarantined"), QString(m_root + QStringLiteral("/train/rose/001.png"))}};
    const QJsonObject root{{QStringLiteral("version"), 1},
                           {QStringLiteral("kind"), QStringLiteral("relabel")},
                           {QStringLiteral("dataset_root"), m_root},
                           {QStringLiteral("entries"), QJsonArray{entry}}};
    QVERIFY(test::writeFile(batchFolder + QStringLiteral("/manifest.json"),
                            QJsonDocument(root).toJson()));
    const Result<QuarantineBatch> read
        = readQuarantineManifest(batchFolder + QStringLiteral("/manifest.json"));
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().contains(u"invalid entry"), qPrintable(read.errorMessage()));
}

QTEST_GUILESS_MAIN(TestQuarantine)
#include "tst_quarantine.moc"
