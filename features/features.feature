@cap-features
Feature: Feature advertisement
  The Lync client shows only what GetCSTAFeaturesResponse offers.

  Scenario Outline: The gateway advertises <capability>
    Given alice is signed in
    Then the gateway advertises <capability>

    Examples:
      | capability         |
      | makeCall           |
      | answerCall         |
      | holdCall           |
      | retrieveCall       |
      | consultationCall   |
      | transferCall       |
      | singleStepTransfer |
      | deflectCall        |
      | generateDigits     |
      | setForwarding      |
