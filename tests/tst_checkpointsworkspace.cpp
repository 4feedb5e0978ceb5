// The Checkpoints workspace as a user drives it (offscreen), on files written by real torch:
// open, browse, filter, statistics, load a DataParallel checkpoint into the plain model's keys
// with a live report, save what torch.load(weights_only=True) reads back equal, keep a backup.
#include "base/settings.h"
#include "checkpoint/checkpointfiles.h"
#include "checkpoints/checkpointjobs.h"
#include "checkpoints/checkpointsavejob.h"
#include "checkpoints/checkpointsworkspace.h"
#include "checkpoints/checkpointtreemodel.h"
#include "checkpoints/loadintomodeldialog.h"
#include "checkpoints/savecheckpointdialog.h"
#include "checkpoints/tensorstatsview.h"
#include "common/elidedlabel.h"
#include "common/warningbanner.h"
#include "mainwindow.h"
#include "testutil.h"

#include <QComboBox>
#include <QCryptographicHash>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QPushButton>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>
#include <QTreeWidget>

#include <sys/stat.h>

#include <algorithm>

using namespace ifs;
using namespace ifs::ckpt;
using namespace ifs::test;

namespace {
constexpr int kWaitMs = 60000;

QByteArray fileHash(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return {};
    return QCryptographicHash::hash(file.readAll(), QCryptographicHash::Sha256);
}
} // namespace

class TestCheckpointsWorkspace : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();
    void emptyState();
    void openFillsTree();
    void filterByKey();
    void loadDialogAutoMatchesAll();
    void saveReadsBackInTorch();
    void overwriteKeepsBackup();
    void compareTwo();
    void mainWindowOpensCheckpoints();
    void topBarFitsTheSmallestWindow();
    void hostileFilesGetAMessage();

private:
    bool open(CheckpointsWorkspace &workspace, const QStringList &names);
    QTemporaryDir m_tmp;
    std::unique_ptr<Settings> m_settings;
};

void TestCheckpointsWorkspace::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName(QStringLiteral("ImageFolderStudioTests"));
    QCoreApplication::setApplicationName(QStringLiteral("tst_checkpointsworkspace"));
    QVERIFY(m_tmp.isValid());
    const ProcessResult made = runOracle(QStringLiteral("checkpointsworkspace_oracle.py"),
                                         {QStringLiteral("make"), m_tmp.path()});
    QVERIFY2(made.exitCode == 0, made.err.constData());
}

void TestCheckpointsWorkspace::init()
{
    m_settings = std::make_unique<Settings>();
    for (const QString &path : m_settings->recentCheckpoints())
        m_settings->removeRecentCheckpoint(path);
}

bool TestCheckpointsWorkspace::open(CheckpointsWorkspace &workspace, const QStringList &names)
{
    QSignalSpy loaded(&workspace, &CheckpointsWorkspace::checkpointsLoaded);
    QSignalSpy failed(&workspace, &CheckpointsWorkspace::loadFailed);
    QStringList paths;
    for (const QString &name : names)
        paths.append(m_tmp.filePath(name));
    workspace.openFiles(paths);
    if (!loaded.wait(kWaitMs)) {
        if (!failed.isEmpty())
            qWarning("%s", qPrintable(failed.constFirst().constFirst().toString()));
        return false;
    }
    return failed.isEmpty() && loaded.size() == 1;
}

void TestCheckpointsWorkspace::emptyState()
{
    CheckpointsWorkspace workspace(m_settings.get());
    workspace.resize(1200, 800);
    workspace.show();
    QVERIFY(!workspace.hasCheckpoint());
    QVERIFY(!workspace.findChild<QPushButton *>(QStringLiteral("saveAsButton"))->isEnabled());
    QVERIFY(!workspace.createLoadDialog());
    QVERIFY(!workspace.createSaveDialog());
}

void TestCheckpointsWorkspace::openFillsTree()
{
    CheckpointsWorkspace workspace(m_settings.get());
    workspace.resize(1200, 800);
    workspace.show();
    QVERIFY(open(workspace, {QStringLiteral("dp_cuda.pth")}));
    QVERIFY(workspace.hasCheckpoint());
    QCOMPARE(workspace.current()->totals.tensors, qint64(122));
    QCOMPARE(m_settings->recentCheckpoints().constFirst(),
             m_tmp.filePath(QStringLiteral("dp_cuda.pth")));
    const QModelIndex state = workspace.model()->indexForPath({QStringLiteral("state_dict")});
    QCOMPARE(workspace.model()->rowCount(state), 122);
    // Saved on cuda:0, on a machine without it: the banner says so.
    QVERIFY(workspace.banner()->isVisibleTo(&workspace));
    QVERIFY2(workspace.banner()->text().contains(QStringLiteral("cuda:0")),
             qPrintable(workspace.banner()->text()));
    // Selecting a tensor computes its statistics off the GUI thread.
    QSignalSpy stats(&workspace, &CheckpointsWorkspace::tensorStatsReady);
    workspace.selectPath({QStringLiteral("state_dict"), QStringLiteral("module.bn1.weight")});
    QVERIFY(stats.wait(kWaitMs));
    QCOMPARE(workspace.statsView()->stats().count, qint64(64));
    QCOMPARE(workspace.statsView()->stats().min, 1.0); // BatchNorm weights start at 1
    QCOMPARE(workspace.statsView()->stats().max, 1.0);
    QCOMPARE(workspace.selectedDictPath(), KeyPath());
    workspace.selectPath({QStringLiteral("state_dict")});
    QCOMPARE(workspace.selectedDictPath(), KeyPath{QStringLiteral("state_dict")});
    const QString summary = workspace.findChild<QLabel *>(QStringLiteral("summaryLabel"))->text();
    QVERIFY2(summary.contains(QStringLiteral("cuda:0")), qPrintable(summary));
    QVERIFY(summary.contains(QStringLiteral("int64")));
    // Export… asks for the Export dialog (the main window opens it) on the file.
    auto *exportButton = workspace.findChild<QPushButton *>(QStringLiteral("exportButton"));
    QVERIFY(exportButton && exportButton->isEnabled());
    QSignalSpy exportRequested(&workspace, &CheckpointsWorkspace::exportRequested);
    exportButton->click();
    QCOMPARE(exportRequested.size(), 1);
    QCOMPARE(exportRequested.constFirst().constFirst().toString(),
             m_tmp.filePath(QStringLiteral("dp_cuda.pth")));
}

void TestCheckpointsWorkspace::filterByKey()
{
    CheckpointsWorkspace workspace(m_settings.get());
    workspace.show();
    QVERIFY(open(workspace, {QStringLiteral("resnet18.pt")}));
    QSortFilterProxyModel *proxy = workspace.proxy();
    const QModelIndex root = proxy->index(0, 0);
    QCOMPARE(proxy->rowCount(root), 122);
    QTest::keyClicks(workspace.filterEdit(), QStringLiteral("layer4.1.bn2"));
    QCOMPARE(proxy->rowCount(proxy->index(0, 0)), 5); // weight, bias, mean, var, counter
    workspace.filterEdit()->setText(QStringLiteral("FC."));
    QCOMPARE(proxy->rowCount(proxy->index(0, 0)), 2); // case-insensitive
    workspace.filterEdit()->setText(QStringLiteral("no such key"));
    QCOMPARE(proxy->rowCount(), 0);
    workspace.filterEdit()->clear();
    QCOMPARE(proxy->rowCount(proxy->index(0, 0)), 122);
}

void TestCheckpointsWorkspace::loadDialogAutoMatchesAll()
{
    CheckpointsWorkspace workspace(m_settings.get());
    workspace.show();
    QVERIFY(open(workspace, {QStringLiteral("dp_cuda.pth")}));
    LoadIntoModelDialog *dialog = workspace.createLoadDialog();
    QVERIFY(dialog);
    dialog->show();
    QSignalSpy target(dialog, &LoadIntoModelDialog::targetChanged);
    dialog->setTargetFile(m_tmp.filePath(QStringLiteral("resnet18.pt")));
    QVERIFY(target.wait(kWaitMs));
    QCOMPARE(dialog->target().size(), 122);
    // As it is: nothing matches ("module." on every key).
    QCOMPARE(dialog->report().matched.size(), 0);
    QCOMPARE(dialog->report().unexpected.size(), 122);
    // A step by hand updates the report live (after the debounce).
    QSignalSpy updated(dialog, &LoadIntoModelDialog::reportUpdated);
    dialog->setOperations({DropKeys{{QStringLiteral("module.fc.*")}}});
    QVERIFY(updated.wait(kWaitMs));
    QCOMPARE(dialog->report().unexpected.size(), 120);
    // Auto: strip "module." → all matched.
    QTest::mouseClick(dialog->findChild<QPushButton *>(QStringLiteral("autoButton")),
                      Qt::LeftButton);
    QCOMPARE(dialog->statePath(), KeyPath{QStringLiteral("state_dict")});
    QCOMPARE(dialog->operations().size(), 1);
    QVERIFY(std::holds_alternative<StripPrefix>(dialog->operations().constFirst()));
    QVERIFY(dialog->report().loadsStrictly());
    QCOMPARE(dialog->report().matched.size(), 122);
    QVERIFY(dialog->findChild<QLabel *>(QStringLiteral("reportHeadline"))
                ->text()
                .contains(QStringLiteral("All 122 keys match")));
    const Result<Value> repaired = dialog->repairedStateDict();
    QVERIFY2(repaired.ok(), qPrintable(repaired.errorMessage()));
    QCOMPARE(repaired->size(), 122);
    QVERIFY(repaired->contains(u"conv1.weight"));
    QCOMPARE(repaired->value(u"conv1.weight").toTensor().device(), QStringLiteral("cpu"));
    // "Use Repaired" opens it in the workspace.
    dialog->accept();
    QCOMPARE(workspace.checkpoints().size(), 2);
    QVERIFY(workspace.current()->label.contains(QStringLiteral("repaired")));
    QCOMPARE(workspace.current()->file.root.size(), 122);
}

void TestCheckpointsWorkspace::saveReadsBackInTorch()
{
    CheckpointsWorkspace workspace(m_settings.get());
    workspace.show();
    QVERIFY(open(workspace, {QStringLiteral("dp_cuda.pth")}));
    workspace.selectPath({QStringLiteral("state_dict")});
    SaveCheckpointDialog *dialog = workspace.createSaveDialog();
    QVERIFY(dialog);
    dialog->show();
    const QString out = m_tmp.filePath(QStringLiteral("weights.pt"));
    dialog->setPath(out);
    // The selected sub-dict, tagged for the CPU.
    dialog->findChild<QComboBox *>(QStringLiteral("deviceCombo"))->setCurrentIndex(1);
    QCOMPARE(dialog->chosenValue().size(), 122);
    QSignalSpy saved(dialog, &SaveCheckpointDialog::saved);
    QSignalSpy failed(dialog, &SaveCheckpointDialog::saveFailed);
    dialog->startSave();
    QVERIFY(saved.wait(kWaitMs));
    QVERIFY(failed.isEmpty());
    const QStringList notes = saved.constFirst().at(1).toStringList();
    QVERIFY2(notes.join(u'\n').contains(QStringLiteral("Verified")), qPrintable(notes.join(u'\n')));
    const ProcessResult equal
        = runOracle(QStringLiteral("checkpointsworkspace_oracle.py"),
                    {QStringLiteral("equal"), out, m_tmp.filePath(QStringLiteral("dp_cuda.pth"))});
    QVERIFY2(equal.exitCode == 0, equal.err.constData());
    QVERIFY(equal.out.startsWith("OK 122 OrderedDict"));

    // safetensors of the same dict.
    const QString st = m_tmp.filePath(QStringLiteral("weights.safetensors"));
    dialog->setPath(st);
    dialog->startSave();
    QVERIFY(saved.wait(kWaitMs));
    QVERIFY(QFileInfo::exists(st));
    dialog->close();
}

void TestCheckpointsWorkspace::overwriteKeepsBackup()
{
    const QString path = m_tmp.filePath(QStringLiteral("input.pt"));
    QFile::remove(path);
    QVERIFY(QFile::copy(m_tmp.filePath(QStringLiteral("resnet18.pt")), path));
    const QByteArray before = fileHash(path);
    CheckpointsWorkspace workspace(m_settings.get());
    workspace.show();
    QVERIFY(open(workspace, {QStringLiteral("input.pt")}));
    SaveCheckpointDialog *dialog = workspace.createSaveDialog();
    dialog->setPath(path);
    dialog->findChild<QComboBox *>(QStringLiteral("castCombo"))->setCurrentIndex(2); // float16
    QStringList asked;
    // Refused: nothing happens.
    dialog->setOverwriteConfirmer([&asked](const QString &p) {
        asked.append(p);
        return false;
    });
    QSignalSpy saved(dialog, &SaveCheckpointDialog::saved);
    dialog->startSave();
    QCOMPARE(asked.size(), 1);
    // Refused before any save began: no job runs, so nothing can be written later either.
    QVERIFY(!dialog->findChild<CheckpointSaveJob *>()->isRunning());
    QVERIFY(saved.isEmpty());
    QCOMPARE(fileHash(path), before);
    QVERIFY(!QFileInfo::exists(path + QStringLiteral(".bak")));
    // Confirmed: the backup is the old file, the file is the new one.
    dialog->setOverwriteConfirmer([](const QString &) { return true; });
    dialog->startSave();
    QVERIFY(saved.wait(kWaitMs));
    QCOMPARE(fileHash(path + QStringLiteral(".bak")), before);
    QVERIFY(fileHash(path) != before);
    ReadOptions options;
    const Result<CheckpointFile> back = readCheckpoint(path, options);
    QVERIFY(back.ok());
    QCOMPARE(back->root.value(u"conv1.weight").toTensor().dtype(), DType::Float16);
    QCOMPARE(back->root.value(u"bn1.num_batches_tracked").toTensor().dtype(), DType::Int64);
    dialog->close();
}

void TestCheckpointsWorkspace::compareTwo()
{
    CheckpointsWorkspace workspace(m_settings.get());
    workspace.show();
    // The training checkpoint's state dict and the one saved from it: the same tensors.
    QVERIFY(open(workspace, {QStringLiteral("dp_cuda.pth"), QStringLiteral("weights.pt")}));
    QVERIFY(workspace.comparison().has_value());
    const StateDictDiff &diff = workspace.comparison()->diff;
    QVERIFY(diff.onlyInA.isEmpty());
    QVERIFY(diff.onlyInB.isEmpty());
    QCOMPARE(diff.identicalCount, 122);
    QCOMPARE(workspace.checkpoints().size(), 2);
    QVERIFY(workspace.comparisonTree()->topLevelItemCount() >= 4);

    QVERIFY(open(workspace, {QStringLiteral("resnet18.pt"), QStringLiteral("input.pt")}));
    const StateDictDiff &cast = workspace.comparison()->diff;
    QCOMPARE(cast.dtypeDiffers.size(), 102);
    QVERIFY(cast.maxAbsDiff > 0.0);
    QVERIFY(cast.maxAbsDiff < 1e-2);
}

void TestCheckpointsWorkspace::mainWindowOpensCheckpoints()
{
    QVERIFY(MainWindow::isCheckpointPath(QStringLiteral("/x/a.pth")));
    QVERIFY(MainWindow::isCheckpointPath(QStringLiteral("b.SAFETENSORS")));
    QVERIFY(!MainWindow::isCheckpointPath(QStringLiteral("/x/a.jpg")));
    // The one list of suffixes: every one opens, in any case, and the file dialogs offer it.
    for (const QString &suffix : checkpointSuffixes()) {
        QVERIFY(MainWindow::isCheckpointPath(QStringLiteral("/x/a.") + suffix));
        QVERIFY(MainWindow::isCheckpointPath(QStringLiteral("a.") + suffix.toUpper()));
        QVERIFY(checkpointNameFilter().split(u' ').contains(QStringLiteral("*.") + suffix));
    }
    QVERIFY(!MainWindow::isCheckpointPath(QStringLiteral("/x/a.pth.txt")));
    MainWindow window;
    window.show();
    QSignalSpy loaded(window.checkpoints(), &CheckpointsWorkspace::checkpointsLoaded);
    window.openCheckpoints({m_tmp.filePath(QStringLiteral("nested.pt"))});
    QVERIFY(loaded.wait(kWaitMs));
    QVERIFY(window.checkpoints()->isVisible());
    QCOMPARE(window.checkpoints()->current()->label, QStringLiteral("nested.pt"));
}

void TestCheckpointsWorkspace::topBarFitsTheSmallestWindow()
{
    // A long file name in the smallest window the app allows: the name shortens with an
    // ellipsis; Open, Recent (with room for its arrow), the filter and the buttons keep theirs.
    const QString longName
        = QStringLiteral("resnet18_imagenet_finetuned_on_fashion_mnist_epoch_090_best.pt");
    QFile::remove(m_tmp.filePath(longName));
    QVERIFY(QFile::copy(m_tmp.filePath(QStringLiteral("resnet18.pt")), m_tmp.filePath(longName)));
    MainWindow window;
    window.resize(window.minimumSize());
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QSignalSpy loaded(window.checkpoints(), &CheckpointsWorkspace::checkpointsLoaded);
    window.openCheckpoints({m_tmp.filePath(longName)});
    QVERIFY(loaded.wait(kWaitMs));
    QCOMPARE(window.size(), window.minimumSize());
    CheckpointsWorkspace *workspace = window.checkpoints();
    QVERIFY(workspace->isVisible());

    auto *recent = workspace->findChild<QPushButton *>(QStringLiteral("recentButton"));
    auto *name = workspace->findChild<ElidedLabel *>(QStringLiteral("fileLabel"));
    QVERIFY(recent && name);
    QVERIFY(recent->menu());
    QCOMPARE(name->text(), longName);
    QVERIFY(name->displayedText() != longName);
    QVERIFY2(name->displayedText().contains(QChar(0x2026)), qPrintable(name->displayedText()));
    QVERIFY(name->displayedText().endsWith(QStringLiteral(".pt"))); // the middle goes

    // Every widget of the bar has at least the width it asks for, and none overlaps the next.
    QList<QWidget *> row;
    for (QWidget *child : workspace->findChildren<QWidget *>(Qt::FindDirectChildrenOnly))
        if (child->isVisible() && child->geometry().top() < recent->geometry().bottom()
            && child->geometry().bottom() > recent->geometry().top())
            row.append(child);
    std::sort(row.begin(), row.end(), [](QWidget *a, QWidget *b) { return a->x() < b->x(); });
    QVERIFY(row.size() >= 6); // Open, Recent, the name, the filter, Load into Model, Save As
    for (int i = 0; i < row.size(); ++i) {
        QWidget *widget = row.at(i);
        QVERIFY2(widget->width() >= widget->minimumSizeHint().width(),
                 qPrintable(QString::fromLatin1(widget->metaObject()->className()) + u' '
                            + widget->objectName()));
        if (i > 0)
            QVERIFY2(row.at(i - 1)->geometry().right() < widget->geometry().left(),
                     qPrintable(widget->objectName()));
        QVERIFY(widget->geometry().right() < workspace->width());
    }
    QVERIFY(recent->width() >= recent->sizeHint().width());
    QVERIFY(recent->geometry().right() < name->geometry().left());
}

void TestCheckpointsWorkspace::hostileFilesGetAMessage()
{
    // A FIFO (refused before it is opened: opening it would wait for a writer forever) and the
    // 101-byte pickle of issue 13 (a list that contains itself, which took the app down): each
    // fails to open with a message; the workspace stays usable.
    const QString fifo = m_tmp.filePath(QStringLiteral("pipe.pth"));
    QVERIFY(::mkfifo(QFile::encodeName(fifo).constData(), 0600) == 0);
    const QString crash = m_tmp.filePath(QStringLiteral("issue13.pkl"));
    QVERIFY(writeFile(
        crash,
        QByteArray::fromBase64("gAJdXV2AAooKbPycBwVLUEb5j49dXWFdYV1hXWFdgAJdXV1dYYACigps/JwHBUtQ"
                               "RvmPj11dYV1hXTJhXWFdgAJdXV1dYV1hXWFdYV1hXWFiXWJdYV1dYWFhXV1hYl1i"
                               "YWJiYj4=")));
    CheckpointsWorkspace workspace(m_settings.get());
    workspace.resize(1200, 800);
    workspace.show();
    const QList<std::pair<QString, QString>> cases{
        {fifo, QStringLiteral("it is a FIFO (named pipe), not a file")},
        {crash, QStringLiteral("Cannot read checkpoint “") + crash},
    };
    for (const auto &[file, message] : cases) {
        QSignalSpy failed(&workspace, &CheckpointsWorkspace::loadFailed);
        workspace.openFiles({file});
        QVERIFY(failed.wait(kWaitMs));
        QVERIFY2(failed.constFirst().constFirst().toString().contains(message),
                 qPrintable(failed.constFirst().constFirst().toString()));
        QVERIFY(!workspace.hasCheckpoint());
    }
    QVERIFY(open(workspace, {QStringLiteral("dp_cuda.pth")}));
}

QTEST_MAIN(TestCheckpointsWorkspace)
#include "tst_checkpointsworkspace.moc"
