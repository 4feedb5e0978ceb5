// The files of a run folder: replaced whole or not at all, grown by whole rows, and left as they
// were when the disk refuses a write (a real refusal: a file size limit on this process, which
// the system enforces as it does a full disk).
#include "testutil.h"

#include "base/atomicfile.h"
#include "training/training.h"

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <cerrno>

using namespace ifs;
using namespace ifs::test;

namespace {

QByteArray readAll(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray("<unreadable>");
}

QStringList entries(const QString &folder)
{
    return QDir(folder).entryList(QDir::Files | QDir::Hidden, QDir::Name);
}

} // namespace

class TestRunFolder : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void atomicWriteReplacesTheFile()
    {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("config.json"));
        QVERIFY(writeFileAtomically(path, "first\n"));
        QCOMPARE(readAll(path), QByteArray("first\n"));
        QVERIFY(QFile::setPermissions(path, QFile::ReadOwner | QFile::WriteOwner));
        QVERIFY(writeFileAtomically(path, "second\n"));
        QCOMPARE(readAll(path), QByteArray("second\n"));
        // The file keeps its permissions (not the 0644 a new file gets).
        const QFile::Permissions mask
            = QFile::ReadOwner | QFile::WriteOwner | QFile::ReadGroup | QFile::ReadOther;
        QCOMPARE(QFile::permissions(path) & mask, QFile::ReadOwner | QFile::WriteOwner);
        QCOMPARE(entries(dir.path()), QStringList{QStringLiteral("config.json")});
    }

    /// The disk refuses the write: the error names the file and the system's reason, the
    /// previous file is untouched and no temporary file stays behind.
    void refusedWriteKeepsThePreviousFile()
    {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("config.json"));
        QVERIFY(writeFileAtomically(path, "{\"lr\": 0.1}\n"));
        Status status = success();
        {
            const FileSizeLimit full(64);
            QVERIFY(full.isActive());
            status = writeFileAtomically(path, QByteArray(4096, 'x'));
        }
        QVERIFY(!status);
        QCOMPARE(status.error().code, ErrorCode::Io);
        QVERIFY2(status.errorMessage().contains(QDir::toNativeSeparators(path)),
                 qPrintable(status.errorMessage()));
        QVERIFY2(status.errorMessage().contains(qt_error_string(EFBIG)),
                 qPrintable(status.errorMessage()));
        QCOMPARE(readAll(path), QByteArray("{\"lr\": 0.1}\n"));
        QCOMPARE(entries(dir.path()), QStringList{QStringLiteral("config.json")});
        // A new file that cannot be written is not created at all.
        {
            const FileSizeLimit full(64);
            status = writeFileAtomically(dir.filePath(QStringLiteral("metrics.csv")),
                                         QByteArray(4096, 'x'));
        }
        QVERIFY(!status);
        QCOMPARE(entries(dir.path()), QStringList{QStringLiteral("config.json")});
    }

    /// A row that does not fit is cut off again: the file ends with its last complete row, and
    /// the next append (once there is room) continues from there.
    void refusedAppendLeavesWholeRows()
    {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("steps.csv"));
        QVERIFY(writeFileAtomically(path, "step,epoch,loss,lr\n"));
        AppendFile file;
        QVERIFY(file.open(path));
        const QByteArray row("1,1,2.30258512,0.1\n");
        QByteArray expected("step,epoch,loss,lr\n");
        Status status = success();
        {
            const FileSizeLimit full(100);
            while ((status = file.append(row)))
                expected += row;
        }
        QVERIFY(!status);
        QVERIFY2(status.errorMessage().contains(u"steps.csv")
                     && status.errorMessage().contains(qt_error_string(EFBIG)),
                 qPrintable(status.errorMessage()));
        QVERIFY(expected.size() <= 100 && expected.size() + row.size() > 100);
        QCOMPARE(readAll(path), expected);
        QVERIFY(file.append(row));
        QVERIFY(file.sync());
        QCOMPARE(readAll(path), expected + row);
    }

    /// A row cut short (the power went while it was written) is not read as a record.
    void historyIgnoresARowCutShort()
    {
        QTemporaryDir dir;
        QVERIFY(writeFile(dir.filePath(QStringLiteral("metrics.csv")),
                          "epoch,step,train_loss,train_acc,val_loss,val_acc,lr,seconds,"
                          "images_per_s\n1,12,2.1,30.0,2.0,35.0,0.1,1.5,300.0\n"));
        QVERIFY(writeFile(dir.filePath(QStringLiteral("steps.csv")),
                          "step,epoch,loss,lr\n1,1,2.3,0.1\n2,1,2.2,0.1\n3,1,2."));
        const Result<RunHistory> history = readRunHistory(dir.path());
        QVERIFY2(history, qPrintable(history.errorMessage()));
        QCOMPARE(history->epochs.size(), 1);
        QCOMPARE(history->steps.size(), 2);
        QCOMPARE(history->steps.back().loss, 2.2);
    }
};

QTEST_GUILESS_MAIN(TestRunFolder)
#include "tst_runfolder.moc"
