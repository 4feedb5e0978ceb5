#pragma once

#include "base/result.h"
#include "common/backgroundjob.h"
#include "dataset/datasetlayout.h"
#include "dataset/imagefolder.h"
#include "transforms/datasetstatsjob.h"
#include "transforms/pipelinemodel.h"
#include "transforms/transformadvice.h"
#include "transforms/transformjobs.h"

#include <QTimer>
#include <QWidget>

class QHBoxLayout;
class QLabel;
class QPushButton;
class QSpinBox;
class QSplitter;
class QStackedWidget;
class QTabWidget;
class QToolButton;

namespace ifs {

class Settings;

class AdvicePanel;
class BatchView;
class PipelineEditor;
class TransformPreview;
class WarningBanner;

/// The Transforms workspace: the Train and Val pipelines of the open dataset, edited as a list
/// of steps or as Python, reviewed for mistakes, and previewed on the dataset's images exactly as
/// torchvision (with torch.manual_seed) would transform them.
///
/// Pipelines are saved per dataset root; a dataset without saved pipelines starts from
/// defaultPipelines() for its images. Previews run off the GUI thread, latest request wins.
class TransformsWorkspace : public QWidget
{
    Q_OBJECT

public:
    explicit TransformsWorkspace(Settings *settings, QWidget *parent = nullptr);
    ~TransformsWorkspace() override;

    /// A dataset finished scanning: load its pipelines (saved, else defaults once the images'
    /// traits are known) and preview its first image, or the one shown by showSample().
    void setDataset(const QString &root, const DatasetScan &scan);
    /// No dataset: the empty page.
    void clearDataset();
    bool hasDataset() const { return !m_root.isEmpty(); }
    QString datasetRoot() const { return m_root; }
    /// True once the pipelines of the dataset are loaded (saved or defaults).
    bool pipelinesLoaded() const { return m_pipelinesLoaded; }
    const DatasetTraits &traits() const { return m_traits; }

    /// Previews sample `row` of `index` (the Datasets workspace's current image).
    void showSample(const IndexPtr &index, int row);
    void showPreviousImage();
    void showNextImage();
    void showRandomImage();
    QString currentImagePath() const;

    quint64 seed() const { return m_seed; }
    void setSeed(quint64 seed);
    /// A new random seed.
    void reseed();
    int draws() const;
    void setDraws(int draws);

    /// Both pipelines back to defaultPipelines() for this dataset; asks first when `ask`.
    void resetToDefaults(bool ask = true);
    /// Writes both pipelines as a Python module (atomically).
    Status exportPython(const QString &path) const;
    /// Reads the pipelines of a Python file: train and val are chosen by variable name; when
    /// that is ambiguous, `interactive` asks, else it fails saying so. A question declined ends
    /// with ErrorCode::Cancelled.
    Status importPython(const QString &path, bool interactive = false);
    void exportPythonInteractive();
    void importPythonInteractive();
    /// Shows one whole training batch of the Train pipeline as the loader makes it (the batch
    /// view), for the current seed.
    void showBatch();
    /// The batch view, once showBatch() made it (tests, screenshots).
    BatchView *batchView() const { return m_batchView; }
    /// Samples images of the dataset, computes their mean and std with a progress dialog, and
    /// offers to put them into Normalize of both pipelines.
    void computeMeanStdInteractive();
    /// Puts mean and std into Normalize of both pipelines.
    void applyNormalize(const std::vector<double> &mean, const std::vector<double> &std);
    /// The image paths the statistics and traits are sampled from (the train split if any);
    /// at most `limit` of them, evenly spread (0: all).
    QStringList statisticsPaths(int limit = 0) const;

    void saveState();

    // Reached by tests, screenshots and the main window.
    PipelineEditor *trainEditor() const { return m_train; }
    PipelineEditor *valEditor() const { return m_val; }
    PipelineEditor *editor(PipelineRole role) const
    {
        return role == PipelineRole::Train ? m_train : m_val;
    }
    TransformPreview *preview() const { return m_preview; }
    AdvicePanel *advicePanel() const { return m_advice; }
    WarningBanner *banner() const { return m_banner; }
    QTabWidget *pipelineTabs() const { return m_tabs; }
    const QList<PipelineAdvice> &advice(PipelineRole role) const
    {
        return role == PipelineRole::Train ? m_trainAdvice : m_valAdvice;
    }
    /// The last preview on show.
    const PreviewResult &lastPreview() const;
    DatasetStatsJob *statsJob() const { return m_statsJob; }

Q_SIGNALS:
    /// A preview arrived (or failed) and is on show.
    void previewUpdated();
    /// The pipelines of the dataset are loaded (saved or defaults) and shown.
    void pipelinesReady();
    void datasetChanged(bool hasDataset);
    void statusMessage(const QString &message);
    void openFolderRequested();
    void openSampleRequested();

protected:
    void showEvent(QShowEvent *event) override;

private:
    QWidget *buildEmptyPage();
    QWidget *buildWorkspacePage();
    /// The title and the actions on both pipelines (mean/std, import, export, reset).
    QHBoxLayout *buildHeader(QWidget *page);
    /// The Train and Val editors in tabs above the findings (m_leftSplitter).
    void buildPipelinesPane(QWidget *page);
    /// Which image (previous, next, random), the number of draws and the seed.
    QHBoxLayout *buildPreviewToolbar(QWidget *page);
    /// The splitters as the user left them.
    void restoreSplitters();
    void onTraitsReady();
    void loadPipelines();
    void setPipelines(const PipelineItems &train, const PipelineItems &val);
    void onPipelineChanged();
    void refreshAdvice();
    void schedulePreview();
    void requestPreview();
    void onPreviewFinished(const PreviewResult &result);
    void onPreviewFailed(quint64 id, const QString &message);
    void setSampleRow(int row);
    void updateImageLabel();
    void savePipelines();
    void updateTabIcons();
    PipelineItems itemsOfImport(const NamedPipeline &found) const;
    bool m_applying = false; // loading pipelines: not a user edit, nothing to save

    Settings *m_settings;
    QString m_root;
    DatasetScan m_scan;
    IndexPtr m_statsIndex; // the split traits and statistics come from
    IndexPtr m_index; // the split the previewed image comes from
    int m_sampleRow = -1;
    DatasetTraits m_traits;
    bool m_traitsKnown = false;
    BackgroundJob<DatasetTraits> m_traitsJob; // reads m_traits off the GUI thread
    bool m_pipelinesLoaded = false;
    quint64 m_seed = 0;
    int m_traceDraw = 0;
    QList<PipelineAdvice> m_trainAdvice;
    QList<PipelineAdvice> m_valAdvice;

    BatchView *m_batchView = nullptr;
    TransformPreviewJob *m_previewJob;
    DatasetStatsJob *m_statsJob;
    quint64 m_previewId = 0;
    bool m_previewPending = false;
    QImage m_loadedImage; // the decoded image of m_loadedPath, reused between previews
    QString m_loadedPath;
    QTimer m_previewTimer;
    QTimer m_saveTimer;

    QStackedWidget *m_pages;
    QLabel *m_title;
    QLabel *m_imageLabel;
    WarningBanner *m_banner;
    QTabWidget *m_tabs;
    PipelineEditor *m_train;
    PipelineEditor *m_val;
    AdvicePanel *m_advice;
    TransformPreview *m_preview;
    QSpinBox *m_seedSpin;
    QSpinBox *m_drawsSpin;
    QToolButton *m_previousButton;
    QToolButton *m_nextButton;
    QToolButton *m_randomButton;
    QPushButton *m_reseedButton;
    QSplitter *m_mainSplitter;
    QSplitter *m_leftSplitter;
};

} // namespace ifs
