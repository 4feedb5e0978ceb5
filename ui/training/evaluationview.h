#pragma once

#include "training/classmetricsmodel.h"
#include "training/evaluation.h"
#include "training/evaluationjob.h"
#include "training/predictionlistmodel.h"
#include "training/predictjob.h"

#include <QWidget>

#include <memory>
#include <vector>

class QCheckBox;
class QComboBox;
class QHBoxLayout;
class QLabel;
class QListView;
class QProgressBar;
class QPushButton;
class QSortFilterProxyModel;
class QSpinBox;
class QSplitter;
class QStackedWidget;
class QTabWidget;
class QTableView;
class QTableWidget;

namespace ifs {

class ConfusionMatrixView;
class ThumbnailLoader;
class WarningBanner;

/// What a model gets right and wrong on the validation images: accuracy, loss and macro-F1, the
/// confusion matrix (click a cell to see its images), a sortable per-class table and a gallery
/// of the misclassified images ranked by loss or confidence. Shows the evaluation of each epoch
/// of a run, or of any checkpoint on demand (loaded and evaluated off the GUI thread, with
/// progress and Cancel).
class EvaluationView : public QWidget
{
    Q_OBJECT

public:
    explicit EvaluationView(QWidget *parent = nullptr);
    ~EvaluationView() override;

    /// Shows an evaluation; `source` says what it is ("Epoch 3 (best)", "best.pth").
    void setEvaluation(std::shared_ptr<const Evaluation> evaluation, const QString &source);
    std::shared_ptr<const Evaluation> evaluation() const { return m_evaluation; }
    void clear();

    /// The labelled images "Evaluate Checkpoint…" runs on, and a phrase saying what they are
    /// ("the val split (10,000 images)").
    void setValidationSamples(std::vector<LoaderSample> samples, const QString &description);
    /// The same, listed on the worker when an evaluation starts (a held-out split to compute).
    void setValidationSource(SampleSource source, const QString &description);
    bool hasValidationSamples() const { return bool(m_samples); }
    /// Device and fallbacks for checkpoints (val transforms, classes) used by evaluations.
    void setClassifierOptions(const ClassifierOptions &options) { m_options = options; }
    /// Where the checkpoint dialog starts.
    void setCheckpointFolder(const QString &folder) { m_checkpointFolder = folder; }

    /// Loads `checkpoint` and evaluates it on the validation samples, off the GUI thread.
    void evaluateCheckpoint(const QString &checkpoint);
    void evaluateCheckpointInteractive();
    void cancelEvaluation();
    bool isEvaluating() const;

    /// Lists the images of one confusion cell below the matrix.
    void showCell(int trueClass, int predictedClass);
    void setMisclassifiedRanking(Evaluation::Ranking ranking);

    ConfusionMatrixView *matrixView() const { return m_matrix; }
    PredictionListModel *cellModel() const { return m_cellModel; }
    QListView *cellView() const { return m_cellView; }
    QLabel *cellLabel() const { return m_cellLabel; }
    PredictionListModel *misclassifiedModel() const { return m_wrongModel; }
    QListView *misclassifiedView() const { return m_wrongView; }
    QComboBox *rankingCombo() const { return m_ranking; }
    ClassMetricsModel *classModel() const { return m_classModel; }
    QTableView *classTable() const { return m_classTable; }
    QTabWidget *tabs() const { return m_tabs; }
    QLabel *summaryLabel() const { return m_summary; }
    QPushButton *evaluateButton() const { return m_evaluateButton; }

Q_SIGNALS:
    /// An evaluation is on show (from a run or a checkpoint).
    void evaluationShown();
    void evaluationFailed(const QString &message);
    void statusMessage(const QString &message);

private:
    /// The numbers, where they come from, Row %, progress and "Evaluate Checkpoint…".
    QHBoxLayout *buildHeader();
    /// The confusion matrix above the images of the cell clicked (m_leftSplitter).
    void buildMatrixPane();
    /// Per-class precision, recall, F1 and counts, sortable (m_classTable).
    void buildClassTable();
    /// The misclassified gallery with its ranking.
    QWidget *buildMisclassifiedPane();
    void connectSignals();
    void setBusy(bool busy);

    std::shared_ptr<const Evaluation> m_evaluation;
    SampleSource m_samples;
    QString m_samplesDescription;
    ClassifierOptions m_options;
    QString m_checkpointFolder;
    bool m_sized = false; // the splitter got its first sizes
    EvaluationJob *m_job;
    ThumbnailLoader *m_loader;

    QStackedWidget *m_pages;
    QLabel *m_emptyLabel;
    QLabel *m_summary;
    QLabel *m_source;
    QPushButton *m_evaluateButton;
    QProgressBar *m_progress;
    QPushButton *m_cancel;
    QCheckBox *m_normalize;
    WarningBanner *m_banner;
    ConfusionMatrixView *m_matrix;
    QLabel *m_cellLabel;
    PredictionListModel *m_cellModel;
    QListView *m_cellView;
    QTabWidget *m_tabs;
    ClassMetricsModel *m_classModel;
    QSortFilterProxyModel *m_classProxy;
    QTableView *m_classTable;
    QComboBox *m_ranking;
    QLabel *m_wrongLabel;
    PredictionListModel *m_wrongModel;
    QListView *m_wrongView;
    QSplitter *m_splitter;
    QSplitter *m_leftSplitter;
};

} // namespace ifs
