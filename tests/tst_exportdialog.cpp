// The Export dialog: exportModel() as a BackgroundJob, on a bare state dict with the
// architecture and val transforms given in the form; the result lists the files and the check.
#include "testutil.h"

#include "torch/runtime.h"
#include "training/exportdialog.h"
#include "training/models.h"

#include <QCheckBox>
#include <QDir>
#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTreeWidget>
#include <QtTest>

using namespace ifs;
using namespace Qt::StringLiterals;

class TstExportDialog : public QObject
{
    Q_OBJECT

    QTemporaryDir m_dir;

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        configureRuntime(2);
    }

    void exportsAndListsTheFiles()
    {
        const QString weights = m_dir.filePath(u"small.pth"_s);
        QVERIFY(exportInitialWeights(u"small_cnn"_s, 3, 1, weights));
        ExportDialog dialog(weights);
        dialog.setModelHints(u"small_cnn"_s,
                             u"transforms.Compose([transforms.Resize((32, 32)), "
                             "transforms.ToTensor()])"_s);
        const QString out = m_dir.filePath(u"out"_s);
        dialog.setOutputFolder(out);
        QCOMPARE(dialog.options().formats.size(), 2);
        QCOMPARE(dialog.options().arch, u"small_cnn"_s);
        QSignalSpy ended(&dialog, &ExportDialog::exportEnded);
        dialog.startExport();
        QVERIFY(dialog.isRunning());
        QVERIFY(ended.wait(300000));
        QCOMPARE(ended.count(), 1);
        QVERIFY2(dialog.statusText().contains(u"checked on"_s), qPrintable(dialog.statusText()));
        QCOMPARE(dialog.result().formats.size(), 2);
        QTreeWidget *files = dialog.fileList();
        QCOMPARE(files->topLevelItemCount(), 6);
        QCOMPARE(files->topLevelItem(0)->text(0), u"model.pt"_s);
        QVERIFY(files->topLevelItem(0)->text(2).startsWith(u"max |Δ|"_s));
        QCOMPARE(files->topLevelItem(1)->text(0), u"model.onnx"_s);
        QVERIFY(files->topLevelItem(2)->text(2).isEmpty());
        QVERIFY(QFile::exists(out + u"/labels.json"_s));
        QVERIFY(QFile::exists(out + u"/predict.py"_s));
    }

    void failureIsShown()
    {
        // A bare state dict without the architecture: the export fails and says why.
        const QString weights = m_dir.filePath(u"bare.pth"_s);
        QVERIFY(exportInitialWeights(u"small_cnn"_s, 3, 1, weights));
        ExportDialog dialog(weights);
        dialog.setOutputFolder(m_dir.filePath(u"never"_s));
        QSignalSpy ended(&dialog, &ExportDialog::exportEnded);
        dialog.startExport();
        QVERIFY(ended.wait(120000));
        QVERIFY2(dialog.statusText().contains(u"does not say which model"_s),
                 qPrintable(dialog.statusText()));
        QCOMPARE(dialog.fileList()->topLevelItemCount(), 0);
    }
};

QTEST_MAIN(TstExportDialog)
#include "tst_exportdialog.moc"
